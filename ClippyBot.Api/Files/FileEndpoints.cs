using ClippyBot.Contracts;
using ClippyBot.Security;
using System.Security.Claims;
using System.Security.Cryptography;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using ClippyBot.Api.Workspaces;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace ClippyBot.Api.Files;

/// <summary>
/// Encrypted files of a workspace: the body of <c>POST …/files?name=</c> is the file (streamed, never buffered), its
/// Content-Type the file's type. Read with <see cref="Permission.DataRead"/>, write and delete with <see cref="Permission.DataWrite"/>.
/// </summary>
public static class FileEndpoints
{
    public sealed record FileResponse(Guid Id, string Name, string ContentType, long Size, DateTimeOffset CreatedAt);

    public static IHostApplicationBuilder AddFiles(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<FileStorageOptions>().Bind(builder.Configuration.GetSection(FileStorageOptions.SectionName))
            .Validate(o => o.MaxFileBytes > 0 && o.WorkspaceQuotaBytes > 0, "Files:MaxFileBytes and Files:WorkspaceQuotaBytes must be positive.")
            .ValidateOnStart();
        builder.Services.AddSingleton<IFileStore>(sp =>
        {
            var root = sp.GetRequiredService<IOptions<FileStorageOptions>>().Value.Root;
            return new LocalFileStore(string.IsNullOrWhiteSpace(root) ? Path.Combine(sp.GetRequiredService<IHostEnvironment>().ContentRootPath, "files") : root);
        });
        builder.Services.AddReencryptable<FileVault>();
        return builder;
    }

    public static IEndpointRouteBuilder MapFilesApi(this IEndpointRouteBuilder app)
    {
        var files = app.MapGroup("/api/workspaces/{workspaceId:guid}/files").WithTags("Files");
        files.MapPost("/", UploadAsync).RequirePermission(Permission.DataWrite)
            // The real cap (Files:MaxFileBytes) is enforced while streaming. The file is the raw body (no body parameter), so its
            // refusals are declared here: too large or over quota, and a type not on the list.
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(long.MaxValue))
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge).ProducesProblem(StatusCodes.Status415UnsupportedMediaType);
        files.MapGet("/", ListAsync).RequirePermission(Permission.DataRead);
        // 500: the stored file failed its integrity check (tampered with or damaged at rest); never for anything the caller sent.
        files.MapGet("/{fileId:guid}", DownloadAsync).RequirePermission(Permission.DataRead)
            .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream") // sent with the type it was uploaded with
            .ProducesProblem(StatusCodes.Status500InternalServerError);
        files.MapDelete("/{fileId:guid}", DeleteAsync).RequirePermission(Permission.DataWrite);
        return app;
    }

    private static async Task<Results<Created<FileResponse>, ProblemHttpResult, ValidationProblem>> UploadAsync(
        Guid workspaceId, string? name, HttpContext http, [AsParameters] FileServices services)
    {
        var ct = http.RequestAborted;
        var options = services.Options.Value;
        var safeName = FileNames.Sanitise(name);
        if (safeName is null)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = ["Give the file a name (query parameter name, at most 255 characters)."] });
        }
        var contentType = MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var media) ? media.MediaType.Value?.ToLowerInvariant() : null;
        if (contentType is null || !options.AllowedContentTypes.Contains(contentType, StringComparer.OrdinalIgnoreCase))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "File type not accepted",
                detail: $"Send the file's type as Content-Type; accepted: {string.Join(", ", options.AllowedContentTypes)}.", type: ProblemTypes.FileType);
        }
        if (http.Request.ContentLength > options.MaxFileBytes)
        {
            return TooLarge(options.MaxFileBytes);
        }
        // Reserve before streaming: the declared length, or as much as a file may be (within what is free). The conditional
        // update fails if a concurrent upload took the space meanwhile; what the body does not use is given back after.
        var used = await services.Db.Workspaces.Where(w => w.Id == workspaceId).Select(w => w.StorageBytes).SingleAsync(ct);
        var allowed = http.Request.ContentLength ?? Math.Min(options.MaxFileBytes, options.WorkspaceQuotaBytes - used);
        var quota = options.WorkspaceQuotaBytes;
        if (allowed <= 0 || await services.Db.Workspaces.Where(w => w.Id == workspaceId && w.StorageBytes + allowed <= quota)
                .ExecuteUpdateAsync(s => s.SetProperty(w => w.StorageBytes, w => w.StorageBytes + allowed), ct) == 0)
        {
            return QuotaExceeded(options.WorkspaceQuotaBytes, used);
        }
        var reserved = allowed;
        try
        {
            var (result, size) = await StoreAsync(workspaceId, safeName, contentType, allowed, used, http, services, options, ct);
            // Keep what the file uses; give back the rest of the reservation (all of it when nothing was stored).
            reserved -= size;
            return result;
        }
        finally
        {
            if (reserved != 0)
            {
                await services.Db.Workspaces.Where(w => w.Id == workspaceId)
                    .ExecuteUpdateAsync(s => s.SetProperty(w => w.StorageBytes, w => w.StorageBytes - reserved), CancellationToken.None);
            }
        }
    }

    private static async Task<(Results<Created<FileResponse>, ProblemHttpResult, ValidationProblem> Result, long Stored)> StoreAsync(
        Guid workspaceId, string safeName, string contentType, long allowed, long used, HttpContext http, FileServices services, FileStorageOptions options, CancellationToken ct)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = allowed + 1;
        }

        var fileId = Guid.CreateVersion7();
        var fileKey = FileVault.NewFileKey();
        long size;
        await using (var staged = services.Store.Stage())
        {
            try
            {
                size = await StreamCipher.EncryptAsync(http.Request.Body, staged.Content, fileKey, fileId, ct, maxBytes: allowed);
            }
            catch (StreamTooLargeException)
            {
                return (allowed < options.MaxFileBytes ? QuotaExceeded(options.WorkspaceQuotaBytes, used) : TooLarge(options.MaxFileBytes), 0);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return (TooLarge(options.MaxFileBytes), 0);
            }
            var (wrapped, keyId) = await services.Vault.WrapAsync(fileKey, fileId, workspaceId, ct);
            CryptographicOperations.ZeroMemory(fileKey);
            await staged.CommitAsync(workspaceId, fileId, ct);
            var row = new StoredFile
            {
                Id = fileId, WorkspaceId = workspaceId, Name = safeName, ContentType = contentType, Size = size, WrappedKey = wrapped, KeyId = keyId,
                CreatedAt = services.Time.GetUtcNow(), CreatedBy = http.User.FindFirstValue("sub") ?? http.User.FindFirstValue(ApiKeys.ApiKeyClaims.KeyId) ?? "?",
            };
            services.Db.StoredFiles.Add(row);
            try
            {
                await services.Db.SaveChangesAsync(ct);
            }
            catch
            {
                services.Store.Delete(workspaceId, fileId); // no body without its row
                throw;
            }
            await services.Audit.RecordAsync(workspaceId, "file.uploaded", $"{fileId}:{size}", ct: ct);
            return (TypedResults.Created($"/api/workspaces/{workspaceId}/files/{fileId}", ToResponse(row)), size);
        }
    }

    private static async Task<Ok<List<FileResponse>>> ListAsync(Guid workspaceId, ApiDbContext db, CancellationToken ct)
    {
        var rows = await db.StoredFiles.AsNoTracking().Where(f => f.WorkspaceId == workspaceId).OrderBy(f => f.CreatedAt).ToListAsync(ct);
        return TypedResults.Ok(rows.Select(ToResponse).ToList());
    }

    private static async Task<Results<EncryptedFileResult, ProblemHttpResult>> DownloadAsync(Guid workspaceId, Guid fileId, [AsParameters] FileServices services, CancellationToken ct)
    {
        var row = await services.Db.StoredFiles.AsNoTracking().SingleOrDefaultAsync(f => f.Id == fileId && f.WorkspaceId == workspaceId, ct);
        return row is null ? NotFound() : new EncryptedFileResult(row, await services.Vault.UnwrapAsync(row, ct), services.Store);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(Guid workspaceId, Guid fileId, [AsParameters] FileServices services, CancellationToken ct)
    {
        var size = await services.Db.StoredFiles.Where(f => f.Id == fileId && f.WorkspaceId == workspaceId).Select(f => (long?)f.Size).SingleOrDefaultAsync(ct);
        var deleted = await services.Db.StoredFiles.Where(f => f.Id == fileId && f.WorkspaceId == workspaceId).ExecuteDeleteAsync(ct);
        if (deleted == 0 || size is not { } freed)
        {
            return NotFound();
        }
        await services.Db.Workspaces.Where(w => w.Id == workspaceId)
            .ExecuteUpdateAsync(s => s.SetProperty(w => w.StorageBytes, w => w.StorageBytes - freed), CancellationToken.None);
        services.Store.Delete(workspaceId, fileId);
        await services.Audit.RecordAsync(workspaceId, "file.deleted", fileId.ToString(), ct: ct);
        return TypedResults.NoContent();
    }

    private static FileResponse ToResponse(StoredFile f) => new(f.Id, f.Name, f.ContentType, f.Size, f.CreatedAt);

    private static ProblemHttpResult NotFound() =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "File not found", type: ProblemTypes.FileNotFound);

    private static ProblemHttpResult TooLarge(long max) => TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "File too large",
        detail: $"Files may be at most {max} bytes.", type: ProblemTypes.FileTooLarge);

    private static ProblemHttpResult QuotaExceeded(long quota, long used) => TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge,
        title: "Workspace storage full", detail: $"The workspace uses {used} of its {quota} bytes; delete files to make room.",
        type: ProblemTypes.QuotaExceeded);
}

public sealed class FileServices(ApiDbContext db, IFileStore store, FileVault vault, AuditLog audit, TimeProvider time, IOptions<FileStorageOptions> options)
{
    public ApiDbContext Db { get; } = db;

    public IFileStore Store { get; } = store;

    public FileVault Vault { get; } = vault;

    public AuditLog Audit { get; } = audit;

    public TimeProvider Time { get; } = time;

    public IOptions<FileStorageOptions> Options { get; } = options;
}

/// <summary>
/// Streams a stored file, decrypting chunk by chunk (each authenticated before it is sent). Damage found before the first
/// byte is a 500 problem; found later, the connection is aborted — never is unauthenticated plaintext sent.
/// </summary>
public sealed class EncryptedFileResult(StoredFile file, byte[] key, IFileStore store) : IResult
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var response = httpContext.Response;
        response.ContentType = file.ContentType;
        response.ContentLength = file.Size;
        response.Headers.ContentDisposition = new ContentDispositionHeaderValue("attachment") { FileNameStar = file.Name }.ToString();
        response.Headers.CacheControl = "private, no-store";
        try
        {
            await using var source = store.OpenRead(file.WorkspaceId, file.Id);
            await StreamCipher.DecryptAsync(source, response.Body, key, file.Id, httpContext.RequestAborted);
        }
        catch (Exception e) when (e is CryptographicException or FileNotFoundException or DirectoryNotFoundException)
        {
            if (response.HasStarted)
            {
                httpContext.Abort();
                return;
            }
            response.Headers.Remove(HeaderNames.ContentDisposition);
            response.ContentLength = null;
            await Results.Problem(statusCode: StatusCodes.Status500InternalServerError, title: "File unreadable",
                detail: "The stored file is damaged or missing; it was not sent.", type: ProblemTypes.FileCorrupted).ExecuteAsync(httpContext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }
}

/// <summary>Turns what a client calls its file into a safe display name: no directories, no control characters, ≤ 255.</summary>
public static class FileNames
{
    public static string? Sanitise(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return null;
        }
        var leaf = name.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        var clean = new string([.. leaf.Where(c => !char.IsControl(c) && c is not ('"' or '<' or '>' or '|' or ':' or '*' or '?'))]).Trim().Trim('.');
        return clean.Length is 0 or > 255 ? null : clean;
    }
}
