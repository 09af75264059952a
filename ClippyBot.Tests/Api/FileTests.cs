using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>Encrypted workspace files over HTTP: streaming upload and download, limits, quota, names, damage and interruptions.</summary>
[TestClass]
public sealed class FileTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_testbed = await ApiTestbed.StartAsync(context.CancellationToken, apiSettings: new Dictionary<string, string?>
    {
        ["Files:MaxFileBytes"] = (3 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Files:WorkspaceQuotaBytes"] = (5 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
    });

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task A_file_is_stored_encrypted_and_comes_back_byte_for_byte()
    {
        var (owner, workspaceId) = await NewWorkspaceAsync();
        var content = RandomNumberGenerator.GetBytes(2 * 1024 * 1024 + 123);
        var created = await UploadAsync(owner, workspaceId, "report.pdf", "application/pdf", content, HttpStatusCode.Created);
        var id = created.GetProperty("id").GetGuid();
        Assert.AreEqual(content.Length, created.GetProperty("size").GetInt64());

        using var download = await owner.GetAsync(new Uri($"/api/workspaces/{workspaceId}/files/{id}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, download.StatusCode);
        Assert.AreEqual("application/pdf", download.Content.Headers.ContentType?.MediaType);
        Assert.AreEqual("report.pdf", download.Content.Headers.ContentDisposition?.FileNameStar);
        CollectionAssert.AreEqual(content, await download.Content.ReadAsByteArrayAsync(Ct));

        // On disk: not the plaintext, not even a recognisable slice of it.
        var onDisk = await File.ReadAllBytesAsync(StoredPath(workspaceId, id), Ct);
        Assert.IsFalse(onDisk.AsSpan().IndexOf(content.AsSpan(1000, 64)) >= 0, "plaintext on disk");

        var listed = await owner.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/files", Ct);
        Assert.AreEqual(1, listed.GetArrayLength());
        using var deleted = await owner.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/files/{id}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.IsFalse(File.Exists(StoredPath(workspaceId, id)));
    }

    [TestMethod]
    public async Task Names_are_sanitised_and_types_outside_the_allow_list_are_refused()
    {
        var (owner, workspaceId) = await NewWorkspaceAsync();
        var created = await UploadAsync(owner, workspaceId, "../../etc/pass\u0007wd", "text/plain", "x"u8.ToArray(), HttpStatusCode.Created);
        Assert.AreEqual("passwd", created.GetProperty("name").GetString());
        await UploadAsync(owner, workspaceId, "run.sh", "application/x-sh", "x"u8.ToArray(), HttpStatusCode.UnsupportedMediaType, "file-type");
        await UploadAsync(owner, workspaceId, "../..", "text/plain", "x"u8.ToArray(), HttpStatusCode.BadRequest);
    }

    [TestMethod]
    public async Task Size_limit_and_workspace_quota_are_enforced_while_streaming_and_leave_nothing_behind()
    {
        var (owner, workspaceId) = await NewWorkspaceAsync();
        var before = StagedFiles();
        // Sent chunked (no Content-Length): only the streaming count can stop it.
        await UploadAsync(owner, workspaceId, "big.bin", "application/octet-stream", new byte[3 * 1024 * 1024 + 1], HttpStatusCode.RequestEntityTooLarge, "file-too-large", chunked: true);
        await UploadAsync(owner, workspaceId, "one.bin", "application/octet-stream", new byte[3 * 1024 * 1024], HttpStatusCode.Created);
        await UploadAsync(owner, workspaceId, "two.bin", "application/octet-stream", new byte[2 * 1024 * 1024 + 1], HttpStatusCode.RequestEntityTooLarge, "quota-exceeded", chunked: true);
        var listed = await owner.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/files", Ct);
        Assert.AreEqual(1, listed.GetArrayLength(), "refused uploads are not listed");
        Assert.AreEqual(before, StagedFiles(), "no staged leftovers");
    }

    [TestMethod]
    public async Task An_interrupted_upload_leaves_no_file()
    {
        var (owner, workspaceId) = await NewWorkspaceAsync();
        var before = StagedFiles();
        using var content = new StreamContent(new FailingStream(512 * 1024));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        await Assert.ThrowsAsync<Exception>(() => owner.PostAsync(new Uri($"/api/workspaces/{workspaceId}/files?name=cut.bin", UriKind.Relative), content, Ct));
        await Rig.Poll.UntilAsync(() => Task.FromResult(StagedFiles() == before), TimeSpan.FromSeconds(10), "the staged part removed", Ct);
        var listed = await owner.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/files", Ct);
        Assert.AreEqual(0, listed.GetArrayLength());
    }

    [TestMethod]
    public async Task A_damaged_stored_file_is_refused_not_served()
    {
        var (owner, workspaceId) = await NewWorkspaceAsync();
        var created = await UploadAsync(owner, workspaceId, "notes.txt", "text/plain", RandomNumberGenerator.GetBytes(200_000), HttpStatusCode.Created);
        var id = created.GetProperty("id").GetGuid();
        var path = StoredPath(workspaceId, id);
        var bytes = await File.ReadAllBytesAsync(path, Ct);
        bytes[100] ^= 1;
        await File.WriteAllBytesAsync(path, bytes, Ct);

        using var download = await owner.GetAsync(new Uri($"/api/workspaces/{workspaceId}/files/{id}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.InternalServerError, download.StatusCode);
        StringAssert.Contains(await download.Content.ReadAsStringAsync(Ct), "file-corrupted");
    }

    [TestMethod]
    public async Task Viewers_read_members_write_and_other_workspaces_see_nothing()
    {
        var (owner, workspaceId) = await NewWorkspaceAsync();
        var viewer = await s_testbed.JoinAsync(owner, workspaceId, "viewer", Ct);
        var member = await s_testbed.JoinAsync(owner, workspaceId, "member", Ct);
        var created = await UploadAsync(member.Client, workspaceId, "a.txt", "text/plain", "hello"u8.ToArray(), HttpStatusCode.Created);
        await UploadAsync(viewer.Client, workspaceId, "b.txt", "text/plain", "no"u8.ToArray(), HttpStatusCode.Forbidden);
        using var read = await viewer.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}/files/{created.GetProperty("id").GetGuid()}", UriKind.Relative), Ct);
        Assert.AreEqual("hello", await read.Content.ReadAsStringAsync(Ct));

        var (stranger, otherWorkspace) = await NewWorkspaceAsync();
        using var guessed = await stranger.GetAsync(new Uri($"/api/workspaces/{otherWorkspace}/files/{created.GetProperty("id").GetGuid()}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.NotFound, guessed.StatusCode, "a file id from another workspace finds nothing");
    }

    private async Task<(HttpClient Owner, Guid WorkspaceId)> NewWorkspaceAsync()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        return (owner.Client, await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Files", Ct));
    }

    private async Task<JsonElement> UploadAsync(HttpClient client, Guid workspaceId, string name, string type, byte[] body, HttpStatusCode expected, string? problem = null, bool chunked = false)
    {
        using HttpContent content = chunked ? new StreamContent(new MemoryStream(body)) : new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        using var response = await client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/files?name={Uri.EscapeDataString(name)}", UriKind.Relative), content, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.AreEqual(expected, response.StatusCode, text);
        if (problem is not null)
        {
            StringAssert.Contains(text, "/problems/" + problem);
        }
        return text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default;
    }

    private static string Root => s_testbed.Api.Settings["Files:Root"]!;

    private static string StoredPath(Guid workspaceId, Guid fileId) => Path.Combine(Root, workspaceId.ToString("N"), fileId.ToString("N"));

    private static int StagedFiles() => Directory.Exists(Path.Combine(Root, ".staging")) ? Directory.GetFiles(Path.Combine(Root, ".staging")).Length : 0;

    /// <summary>A request body that breaks off after <paramref name="length"/> bytes, as a dropped connection does.</summary>
    private sealed class FailingStream(int length) : Stream
    {
        private int _sent;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _sent; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_sent >= length)
            {
                throw new IOException("connection lost");
            }
            var n = Math.Min(count, length - _sent);
            _sent += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
