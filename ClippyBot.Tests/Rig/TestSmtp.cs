using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.AppHost.Infrastructure;

namespace ClippyBot.Tests.Rig;

/// <summary>
/// A real SMTP server for the test run: smtp4dev from the repository's tool manifest (the same server the AppHost runs for
/// developers), in memory, on free loopback ports. Tests read delivered mail through its web API.
/// </summary>
public sealed class TestSmtp : IDisposable
{
    private readonly Process _process;
    private readonly HttpClient _api;

    private TestSmtp(Process process, int smtpPort, Uri web)
    {
        _process = process;
        SmtpPort = smtpPort;
        _api = new HttpClient { BaseAddress = web, Timeout = TimeSpan.FromSeconds(10) };
    }

    public int SmtpPort { get; }

    /// <summary>The <c>Email</c> settings that make a service deliver here.</summary>
    public IReadOnlyDictionary<string, string?> ServiceSettings => new Dictionary<string, string?>
    {
        ["Email:Host"] = "127.0.0.1",
        ["Email:Port"] = SmtpPort.ToString(CultureInfo.InvariantCulture),
        ["Email:Security"] = "None",
        ["Email:FirstRetryDelay"] = "00:00:00.200",
    };

    /// <summary>Starts smtp4dev; <paramref name="smtpPort"/> 0 = a free port.</summary>
    public static async Task<TestSmtp> StartAsync(CancellationToken ct, int smtpPort = 0)
    {
        smtpPort = smtpPort == 0 ? LocalInfrastructureOptions.FreePort() : smtpPort;
        var webPort = LocalInfrastructureOptions.FreePort(exclude: smtpPort);
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Repository.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in (string[])["tool", "run", "smtp4dev", "--", $"--urls=http://127.0.0.1:{webPort}", $"--smtpport={smtpPort}",
                     "--imapport=0", "--pop3port=0", "--db=", "--nousersettings", "--messagestokeep=10000", "--bindaddress=127.0.0.1"])
        {
            start.ArgumentList.Add(argument);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("smtp4dev did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var smtp = new TestSmtp(process, smtpPort, new Uri($"http://127.0.0.1:{webPort}"));
        await Poll.UntilAsync(async () =>
        {
            try
            {
                using var response = await smtp._api.GetAsync(new Uri("/api/messages", UriKind.Relative), ct);
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return !process.HasExited ? false : throw new InvalidOperationException($"smtp4dev exited with {process.ExitCode}; run `dotnet tool restore`.");
            }
        }, TimeSpan.FromSeconds(60), "smtp4dev answering", ct);
        return smtp;
    }

    public sealed record Mail(string Id, string Subject, string Text, string Html);

    /// <summary>Waits for the <paramref name="count"/>-th message to <paramref name="to"/> whose subject contains <paramref name="subject"/>.</summary>
    public async Task<Mail> WaitForAsync(string to, string subject, CancellationToken ct, int count = 1)
    {
        Mail? found = null;
        await Poll.UntilAsync(async () =>
        {
            var all = await MessagesToAsync(to, ct);
            var matching = all.Where(m => m.Subject.Contains(subject, StringComparison.Ordinal)).ToList();
            found = matching.Count >= count ? matching[count - 1] : null;
            return found is not null;
        }, TimeSpan.FromSeconds(30), $"mail '{subject}' to {to}", ct);
        return found!;
    }

    /// <summary>Every message delivered to <paramref name="to"/>, oldest first, with text and HTML bodies.</summary>
    public async Task<IReadOnlyList<Mail>> MessagesToAsync(string to, CancellationToken ct)
    {
        var page = await _api.GetFromJsonAsync<JsonElement>($"/api/messages?searchTerms={Uri.EscapeDataString(to)}&pageSize=1000", ct);
        var mails = new List<Mail>();
        foreach (var summary in page.GetProperty("results").EnumerateArray()
                     .Where(r => r.GetProperty("to").EnumerateArray().Any(t => string.Equals(t.GetString(), to, StringComparison.OrdinalIgnoreCase)))
                     .OrderBy(r => r.GetProperty("receivedDate").GetDateTimeOffset()))
        {
            var id = summary.GetProperty("id").GetString()!;
            var text = await _api.GetStringAsync(new Uri($"/api/messages/{id}/plaintext", UriKind.Relative), ct);
            var html = await _api.GetStringAsync(new Uri($"/api/messages/{id}/html", UriKind.Relative), ct);
            mails.Add(new Mail(id, summary.GetProperty("subject").GetString() ?? "", text, html));
        }
        return mails;
    }

    /// <summary>The first link in a message's text body that starts with <paramref name="prefix"/> (an absolute URL or a path).</summary>
    public static Uri LinkIn(Mail mail, string prefix)
    {
        ArgumentNullException.ThrowIfNull(mail);
        var url = mail.Text.Split([' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(w => w.StartsWith("http", StringComparison.Ordinal) && new Uri(w).AbsolutePath.StartsWith(prefix, StringComparison.Ordinal));
        return url is null ? throw new AssertFailedException($"No {prefix} link in: {mail.Text}") : new Uri(url);
    }

    public void Dispose()
    {
        _api.Dispose();
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
