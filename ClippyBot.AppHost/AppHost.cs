using ClippyBot.AppHost.Infrastructure;

var builder = DistributedApplication.CreateBuilder(args);

var infrastructure = builder.AddClippyBotInfrastructure();
builder.AddAppHostTelemetry();
var mail = builder.AddDevelopmentMailServer();

// The Api's own credentials (client credentials grant) for calling Identity's containment API and the PluginHost.
var apiServiceSecret = builder.AddGeneratedSecret("api-service-client-secret");

var identity = builder.AddProject<Projects.ClippyBot_Identity>("identity")
    .WithDevelopmentTls(infrastructure.Certificates)
    .WithOwnDatabase<Projects.ClippyBot_Identity>(infrastructure.IdentityDatabase)
    .WithCache(infrastructure.Cache)
    .WithDevelopmentMail(mail)
    .WithIdentityConfiguration(apiServiceSecret)
    .WithPageLink("/account/register", "Sign up")
    .WithPageLink("/account/manage", "Account");

// The community plugin registry: its signed TUF metadata is what PluginHosts trust. Development keys and the first-party
// example plugins are made under .clippybot/registry/ (docs/plugins/registry.md).
var (registryKeys, firstPartyBundles) = builder.AddRegistryKeys(infrastructure.DataRoot);
var registry = builder.AddProject<Projects.ClippyBot_Registry>("registry")
    .WithDevelopmentTls(infrastructure.Certificates)
    .WithOwnDatabase<Projects.ClippyBot_Registry>(infrastructure.RegistryDatabase)
    .WithCache(infrastructure.Cache)
    .WithRegistryKeys(registryKeys, firstPartyBundles)
    // Publishers and reviewers sign in at Identity (pages) or bring its tokens (API).
    .WithRegistrySignIn(identity)
    .WithEnvironment("Registry__KeyEncryptionKey", builder.AddGeneratedSecret("registry-key-encryption-key"))
    // The audit chain's HMAC key: never in the database, so whoever can write the table cannot forge the chain.
    .WithEnvironment("Registry__AuditChainKey", builder.AddGeneratedSecret("registry-audit-chain-key"))
    .WithPageLink("/publish", "Publish plugins")
    .WithPageLink("/review", "Review plugins")
    .WithPageLink("/tuf/timestamp.json", "Registry timestamp");

// Runs plugins; the Api is its one caller (no public ingress is configured for it).
var pluginHost = builder.AddProject<Projects.ClippyBot_PluginHost>("pluginhost")
    .WithDevelopmentTls(infrastructure.Certificates)
    .WithOwnDatabase<Projects.ClippyBot_PluginHost>(infrastructure.PluginsDatabase)
    .WithEnvironment("Encryption__KeyEncryptionKey", builder.AddGeneratedSecret("pluginhost-key-encryption-key"))
    // Validates the Api's service tokens against Identity's keys.
    .WithReference(identity)
    .WithRegistryTrust(registry, registryKeys);

var api = builder.AddProject<Projects.ClippyBot_Api>("api")
    .WithDevelopmentTls(infrastructure.Certificates)
    .WithOwnDatabase<Projects.ClippyBot_Api>(infrastructure.ApiDatabase)
    // Per-person keys (crypto-shredding on erasure) live apart from apidb so that apidb's backups never hold them (docs/privacy.md).
    .WithOwnSecondDatabase<Projects.ClippyBot_Api>(infrastructure.SubjectKeysDatabase)
    .WithCache(infrastructure.Cache)
    .WithReference(identity).WaitFor(identity)
    .WithEnvironment("ServiceClient__ClientSecret", apiServiceSecret)
    .WithWebAppOrigins()
    .WithDevelopmentMail(mail)
    .WithEnvironment("ApiKeys__HashKey", builder.AddGeneratedSecret("api-key-hash-key"))
    // The audit chain's HMAC key: never in the database, so whoever can write the table cannot forge the chain.
    .WithEnvironment("Audit__ChainKey", builder.AddGeneratedSecret("api-audit-chain-key"))
    .WithEnvironment("Encryption__KeyEncryptionKey", builder.AddGeneratedSecret("api-key-encryption-key"))
    .WithReference(pluginHost).WaitFor(pluginHost)
    .WithPageLink("/scalar", "API reference (Scalar)")
    // Scalar's "Authorize" signs in through Identity with the development client.
    .WithApiReferenceSignIn(identity)
    // Operator actions as confirmed dashboard commands, audited as the account running the AppHost.
    .WithOperatorCommands(identity, infrastructure.Certificates)
    // Alerts and incidents for platform administrators, signed in through Identity with a second factor.
    .WithSecurityConsoleSignIn(identity);
if (!builder.ExecutionContext.IsPublishMode)
{
    // Encrypted file bodies; a deployment points Files:Root at its volume (or, later, an object store).
    api.WithEnvironment("Files__Root", Path.Combine(infrastructure.DataRoot, "files"));
    // Personal-data download links point at the Api's own https endpoint.
    api.WithEnvironment("Privacy__PublicBaseUrl", api.GetEndpoint("https"));
}

builder.Build().Run();
