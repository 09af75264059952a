namespace ClippyBot.Contracts;

/// <summary>
/// Token audiences: the resource servers Identity issues access tokens for. Identity writes them into tokens, each
/// service checks its own — one spelling for both sides.
/// </summary>
public static class Audiences
{
    public const string Api = "clippybot-api";
    public const string PluginHost = "clippybot-pluginhost";

    /// <summary>The community plugin registry's publisher and reviewer API.</summary>
    public const string Registry = "clippybot-registry";

    /// <summary>Identity itself, as the resource behind its internal service APIs.</summary>
    public const string Identity = "clippybot-identity";
}

/// <summary>The scopes clients ask for, and what each reaches (Identity maps each to its audience).</summary>
public static class ApiScopes
{
    /// <summary>People's access to the public Api.</summary>
    public const string Api = "api";

    /// <summary>The Api's calls to the PluginHost.</summary>
    public const string PluginHost = "pluginhost";

    /// <summary>People's access to the community registry as publishers and reviewers (first-party clients only).</summary>
    public const string Registry = "registry";

    /// <summary>Identity's containment API: lock accounts, end sessions.</summary>
    public const string IdentityContainment = "identity.containment";

    /// <summary>Identity's data-subject API: export and erase an account's personal data.</summary>
    public const string IdentityPrivacy = "identity.privacy";

    /// <summary>Identity's audit-anchor API: record and read the Api's audit chain heads.</summary>
    public const string IdentityAudit = "identity.audit";

    /// <summary>
    /// The platform operator's console (the AppHost's dashboard commands): the Api's platform-administrator endpoints,
    /// as a client-credentials caller. Only configured clients get it; apps are never offered it.
    /// </summary>
    public const string Operations = "api.operations";

    /// <summary>
    /// An external Prometheus scraping the Api's <c>/metrics</c> (client credentials): reads metrics, nothing else.
    /// Only configured clients get it; apps are never offered it.
    /// </summary>
    public const string Metrics = "api.metrics";
}
