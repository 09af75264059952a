using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Contracts;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// The dashboard as the operator's console (run mode): platform-wide actions as confirmed resource commands on the Api.
/// The AppHost holds a client-credentials client of its own (<see cref="ClientId"/>, scope <see cref="ApiScopes.Operations"/>,
/// a generated secret) and calls the Api's platform-administrator endpoints with it, naming the account that runs the
/// AppHost, so every action lands in the platform audit chain as "clippybot-operator for user@machine". Whoever runs the
/// AppHost already holds every secret of this development platform; a deployment registers no such client.
/// </summary>
public static class OperatorConsole
{
    public const string ClientId = "clippybot-operator";

    public static IResourceBuilder<ProjectResource> WithOperatorCommands(this IResourceBuilder<ProjectResource> api,
        IResourceBuilder<ProjectResource> identity, DevelopmentCertificates? certificates)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(identity);
        var builder = api.ApplicationBuilder;
        if (builder.ExecutionContext.IsPublishMode)
        {
            return api;
        }
        var secret = builder.AddGeneratedSecret("operator-client-secret");
        var prefix = $"Oidc__Clients__{IdentityConfiguration.OperatorClientIndex(builder)}__";
        identity.WithEnvironment(prefix + "ClientId", ClientId)
            .WithEnvironment(prefix + "DisplayName", "ClippyBot operator console (AppHost dashboard)")
            .WithEnvironment(prefix + "ClientSecret", secret)
            .WithEnvironment(prefix + "GrantTypes__0", "client_credentials")
            .WithEnvironment(prefix + "Scopes__0", ApiScopes.Operations);
        api.WithEnvironment("Operations__ClientId", ClientId);

        var caller = new OperatorCaller(identity.GetEndpoint("https"), api.GetEndpoint("https"), secret.Resource, certificates);
        void Command(string name, string displayName, string confirmation, string icon, HttpMethod method, string path)
        {
            api.WithCommand(name, displayName, context => caller.CallAsync(method, path, context.CancellationToken),
                new CommandOptions
                {
                    ConfirmationMessage = confirmation,
                    IconName = icon,
                    UpdateState = c => c.ResourceSnapshot.HealthStatus == Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy
                        ? ResourceCommandState.Enabled : ResourceCommandState.Disabled,
                });
        }
        Command("rotate-data-keys", "Rotate data keys",
            "Create a new data-encryption key and re-encrypt every stored secret, file key and sealed value with it?", "KeyReset",
            HttpMethod.Post, "/api/admin/encryption/rotate");
        Command("rotate-signing-keys", "Rotate signing keys",
            "Stop Identity's token-signing keys now and sign with a new one? Tokens already issued stay valid until they expire; each service fetches the new key when it first meets it.", "Key",
            HttpMethod.Post, "/api/admin/signing-keys/rotate");
        Command("release-quarantines", "Release all quarantines",
            "Release every plugin quarantine an operator or a rule set, in every workspace? The registry's withdrawals stay.", "LockOpen",
            HttpMethod.Post, "/api/admin/quarantines/release");
        Command("verify-audit-chains", "Verify audit chains",
            "Walk the platform's and every workspace's audit chain against Identity's anchors?", "ShieldCheckmark",
            HttpMethod.Get, "/api/admin/audit/verify-all");
        return api;
    }

    /// <summary>Who runs the AppHost, in the characters the Api accepts for the audit actor.</summary>
    internal static string OperatorName()
    {
        var name = $"{Environment.UserName}@{Environment.MachineName}";
        var safe = new string([.. name.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@')]);
        return safe.Length > 64 ? safe[..64] : safe;
    }

    private sealed class OperatorCaller(EndpointReference identity, EndpointReference api, ParameterResource secret, DevelopmentCertificates? certificates)
    {
        public async Task<ExecuteCommandResult> CallAsync(HttpMethod method, string path, CancellationToken ct)
        {
            try
            {
                using var http = CreateClient();
                var token = await TokenAsync(http, ct);
                using var request = new HttpRequestMessage(method, new Uri(new Uri(api.Url), path));
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                request.Headers.Add("X-ClippyBot-Operator", OperatorName());
                if (method == HttpMethod.Post)
                {
                    request.Content = JsonContent.Create(new { });
                }
                using var response = await http.SendAsync(request, ct);
                var body = await response.Content.ReadAsStringAsync(ct);
                return response.IsSuccessStatusCode
                    ? CommandResults.Success($"{(int)response.StatusCode}: done, recorded in the platform audit chain.", Pretty(body), CommandResultFormat.Json)
                    : CommandResults.Failure($"The Api answered {(int)response.StatusCode}.", Pretty(body), CommandResultFormat.Json);
            }
            catch (Exception e) when (e is HttpRequestException or JsonException or InvalidOperationException or KeyNotFoundException
                                           or TaskCanceledException && !ct.IsCancellationRequested)
            {
                return CommandResults.Failure(e.Message);
            }
        }

        private async Task<string> TokenAsync(HttpClient http, CancellationToken ct)
        {
            using var response = await http.PostAsync(new Uri(new Uri(identity.Url), "/connect/token"), new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = ClientId,
                ["client_secret"] = await secret.GetValueAsync(ct) ?? "",
                ["scope"] = ApiScopes.Operations,
            }), ct);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"Identity refused the operator console's token request ({(int)response.StatusCode}).");
            }
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            return json.RootElement.GetProperty("access_token").GetString() ?? throw new InvalidOperationException("Identity answered without a token.");
        }

        // The services present the AppHost's development CA: trusted as the services trust each other.
        private HttpClient CreateClient()
        {
            var handler = new SocketsHttpHandler();
            if (certificates is not null)
            {
                ClippyBot.Security.PrivateCaTrust.Apply(handler, certificates.LoadCaCertificate());
            }
            return new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(2) };
        }

        private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

        private static string Pretty(string body)
        {
            try
            {
                using var json = JsonDocument.Parse(body);
                return JsonSerializer.Serialize(json.RootElement, Indented);
            }
            catch (JsonException)
            {
                return body;
            }
        }
    }
}
