namespace ClippyBot.Contracts;

/// <summary>
/// Every problem type (RFC 7807 <c>type</c>) the services answer with, in one catalogue: clients match on these URIs, so they
/// never change once published. docs/problems.md describes each; ArchitectureTests keep the literals out of the services.
/// </summary>
public static class ProblemTypes
{
    public const string Base = "https://clippybot.dev/problems/";

    public const string AlertNotFound = Base + "alert-not-found";
    public const string ApiKeyExpired = Base + "api-key-expired";
    public const string ApiKeyInvalid = Base + "api-key-invalid";
    public const string ApiKeyNotAllowed = Base + "api-key-not-allowed";
    public const string ApiKeyNotFound = Base + "api-key-not-found";
    public const string ApiKeyRevoked = Base + "api-key-revoked";
    public const string BodyTooLarge = Base + "body-too-large";
    public const string ConnectionNotFound = Base + "connection-not-found";
    public const string ConsentRequired = Base + "consent-required";
    public const string DependencyUnavailable = Base + "dependency-unavailable";
    public const string EmailUnverified = Base + "email-unverified";
    public const string ExportExpired = Base + "export-expired";
    public const string ExportInProgress = Base + "export-in-progress";
    public const string ExportNotFound = Base + "export-not-found";
    public const string ExportNotReady = Base + "export-not-ready";
    public const string FileCorrupted = Base + "file-corrupted";
    public const string FileNotFound = Base + "file-not-found";
    public const string FileTooLarge = Base + "file-too-large";
    public const string FileType = Base + "file-type";
    public const string HttpsRequired = Base + "https-required";
    public const string IdentityUnavailable = Base + "identity-unavailable";
    public const string IncidentNotFound = Base + "incident-not-found";
    public const string IncidentState = Base + "incident-state";
    public const string InvitationInvalid = Base + "invitation-invalid";
    public const string InvitationLimit = Base + "invitation-limit";
    public const string LastOwner = Base + "last-owner";
    public const string MemberNotFound = Base + "member-not-found";
    public const string MfaRequired = Base + "mfa-required";
    public const string MfaRequiredToEnable = Base + "mfa-required-to-enable";
    public const string NotFound = Base + "not-found";
    public const string OwnersOnly = Base + "owners-only";
    public const string PermissionDenied = Base + "permission-denied";
    public const string KeyProofInvalid = Base + "key-proof-invalid";
    public const string NamespaceTaken = Base + "namespace-taken";
    public const string PluginAlreadyInstalled = Base + "plugin-already-installed";
    public const string PluginModuleRejected = Base + "plugin-module-rejected";
    public const string PluginNotFound = Base + "plugin-not-found";
    public const string PluginNotInstalled = Base + "plugin-not-installed";
    public const string PluginQuarantined = Base + "plugin-quarantined";
    public const string PluginRequestRefused = Base + "plugin-request-refused";
    public const string PluginTooLarge = Base + "plugin-too-large";
    public const string PluginVersionChanged = Base + "plugin-version-changed";
    public const string PluginhostUnavailable = Base + "pluginhost-unavailable";
    public const string PublisherExists = Base + "publisher-exists";
    public const string PublisherRequired = Base + "publisher-required";
    public const string QuotaExceeded = Base + "quota-exceeded";
    public const string RateLimited = Base + "rate-limited";
    public const string ReauthenticationRequired = Base + "reauthentication-required";
    public const string RevocationUnavailable = Base + "revocation-unavailable";
    public const string SecretNotFound = Base + "secret-not-found";
    public const string SoleOwner = Base + "sole-owner";
    public const string SubmissionRejected = Base + "submission-rejected";
    public const string TokenRevoked = Base + "token-revoked";
    public const string UnknownAccount = Base + "unknown-account";
    public const string UsersOnly = Base + "users-only";
    public const string Validation = Base + "validation";
    public const string WorkspaceNotFound = Base + "workspace-not-found";

    /// <summary>A family named by a value, such as a bundle error (<c>plugin-badsignature</c>).</summary>
    public static string Of(string slug) => Base + slug;
}
