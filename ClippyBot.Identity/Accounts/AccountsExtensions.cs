using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.AspNetCore.Identity;

namespace ClippyBot.Identity.Accounts;

/// <summary>Configuration section <c>Lockout</c>.</summary>
public sealed class LockoutSettings
{
    public int MaxFailedAttempts { get; set; } = 5;

    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(15);
}

public static class AccountsExtensions
{
    public const string CookieName = "__Host-clippybot.identity";

    public static IHostApplicationBuilder AddAccounts(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<PasswordHashingOptions>().Bind(builder.Configuration.GetSection(PasswordHashingOptions.SectionName))
            .Validate(o => o.MemoryKiB >= 19_456 && o.Iterations >= 2 || o.MemoryKiB >= 47_104, "PasswordHashing must be at least OWASP's minimum (m=19 MiB,t=2 or m=46 MiB,t=1).")
            .ValidateOnStart();
        // A zero window would divide by zero on every sign-in (500s); a negative one would expire each count at once (no throttle).
        builder.Services.AddOptions<LoginThrottleOptions>().Bind(builder.Configuration.GetSection(LoginThrottleOptions.SectionName))
            .Validate(o => o.Window >= TimeSpan.FromSeconds(1) && o.MaxAttemptsPerWindow >= 1,
                $"{LoginThrottleOptions.SectionName}: Window must be at least one second and MaxAttemptsPerWindow at least 1.")
            .ValidateOnStart();
        var lockout = builder.Configuration.GetSection("Lockout").Get<LockoutSettings>() ?? new LockoutSettings();

        builder.Services.AddIdentity<ApplicationUser, IdentityRole<Guid>>(options =>
            {
                options.User.RequireUniqueEmail = true;
                // Length and the common-password list are the whole policy (ASVS 5.0 §6.2): no composition rules.
                options.Password.RequiredLength = PasswordPolicyValidator.MinimumLength;
                options.Password.RequireDigit = false;
                options.Password.RequireLowercase = false;
                options.Password.RequireUppercase = false;
                options.Password.RequireNonAlphanumeric = false;
                options.Password.RequiredUniqueChars = 1;
                options.Lockout.AllowedForNewUsers = true;
                options.Lockout.MaxFailedAccessAttempts = lockout.MaxFailedAttempts;
                options.Lockout.DefaultLockoutTimeSpan = lockout.Duration;
                options.ClaimsIdentity.UserIdClaimType = OpenIddict.Abstractions.OpenIddictConstants.Claims.Subject;
            })
            .AddEntityFrameworkStores<IdentityDataContext>()
            .AddUserManager<ClippyUserManager>()
            .AddSignInManager<ClippySignInManager>()
            .AddDefaultTokenProviders()
            .AddPasswordValidator<PasswordPolicyValidator>()
            .AddClaimsPrincipalFactory<AccountClaimsFactory>();
        builder.Services.AddSingleton<IPasswordHasher<ApplicationUser>, Argon2idPasswordHasher<ApplicationUser>>();

        builder.Services.ConfigureApplicationCookie(cookie =>
        {
            cookie.Cookie.Name = CookieName;
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            cookie.Cookie.SameSite = SameSiteMode.Lax; // the authorize redirect from a client's site must carry it
            cookie.LoginPath = "/account/login";
            cookie.LogoutPath = "/account/logout";
            cookie.AccessDeniedPath = "/account/login";
            cookie.ExpireTimeSpan = TimeSpan.FromHours(8);
            cookie.SlidingExpiration = true;
            // The absolute lifetime (from the last proven credential), then the security stamp.
            cookie.Events.OnValidatePrincipal = AuthenticationTime.ValidateSessionAsync;
            // An administrator whose session has no second factor is sent to enrol (or use) one; anyone else is refused.
            // (enrolled already: sign in again through the second factor).
            cookie.Events.OnRedirectToAccessDenied = async context =>
            {
                var user = context.HttpContext.User;
                if (user.Identity?.IsAuthenticated == true && !user.HasClaim("amr", "mfa"))
                {
                    var account = await context.HttpContext.RequestServices.GetRequiredService<UserManager<ApplicationUser>>().GetUserAsync(user);
                    var back = context.Request.PathBase + context.Request.Path + context.Request.QueryString;
                    context.Response.Redirect(account?.TwoFactorEnabled == true
                        ? "/account/login?ReturnUrl=" + Uri.EscapeDataString(back)
                        : "/account/manage/two-factor?required=admin");
                }
                else
                {
                    context.Response.StatusCode = StatusCodes.Status403Forbidden;
                }
            };
        });
        // Every request re-checks the security stamp (one indexed read): a password reset, lock or "sign out everywhere"
        // ends other browsers' sessions at their next click, not up to an interval later.
        builder.Services.Configure<SecurityStampValidatorOptions>(o =>
        {
            o.ValidationInterval = TimeSpan.Zero;
            // The re-created principal must still say how the user signed in (amr: pwd, otp, mfa), or 2FA would be forgotten.
            o.OnRefreshingPrincipal = context =>
            {
                // and when the person last proved a credential (AuthenticationTime), or the refresh would make the login look fresh.
                var methods = context.CurrentPrincipal?.FindAll("amr").Select(c => c.Value).ToList() ?? [];
                if (context.NewPrincipal?.Identity is System.Security.Claims.ClaimsIdentity identity)
                {
                    if (!identity.HasClaim(c => c.Type == "amr"))
                    {
                        identity.AddClaims(methods.Select(m => new System.Security.Claims.Claim("amr", m)));
                    }
                    if (AuthenticationTime.Of(context.CurrentPrincipal) is { } at && !identity.HasClaim(c => c.Type == AuthenticationTime.ClaimType))
                    {
                        identity.AddClaim(AuthenticationTime.Claim(at));
                    }
                    if (BrowserSession.Of(context.CurrentPrincipal) is { } browser && !identity.HasClaim(c => c.Type == BrowserSession.ClaimType))
                    {
                        identity.AddClaim(new System.Security.Claims.Claim(BrowserSession.ClaimType, browser));
                    }
                }
                return Task.CompletedTask;
            };
        });
        // Antiforgery refuses to issue a Secure-only cookie over plain http, so local http development uses a
        // same-as-request cookie without the __Host- prefix (which requires Secure); https always gets __Host-.
        var plainHttp = builder.AllowsPlainHttp("Oidc:AllowHttp");
        builder.Services.AddAntiforgery(o =>
        {
            o.Cookie.Name = plainHttp ? "clippybot.af" : "__Host-clippybot.af";
            o.Cookie.SecurePolicy = plainHttp ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;
        });
        builder.Services.AddSingleton<LoginThrottle>();
        builder.Services.AddScoped<AccountLockout>();
        builder.Services.AddOptions<RegistrationThrottleOptions>().Bind(builder.Configuration.GetSection(RegistrationThrottleOptions.SectionName))
            .Validate(o => o.MaxPerWindow >= 1 && o.Window >= TimeSpan.FromSeconds(10), "RegistrationThrottle needs MaxPerWindow ≥ 1 and a Window of at least 10 seconds.")
            .ValidateOnStart();
        builder.Services.AddSingleton<RegistrationThrottle>();
        // Cookies must open on every replica and survive restarts: one sealed key ring in identitydb.
        builder.AddSealedDataProtection<IdentityDataContext>("identity", "Oidc:KeyEncryptionKey");
        builder.Services.AddScoped<Administrators>();
        builder.Services.AddScoped<Microsoft.AspNetCore.Authorization.IAuthorizationHandler, AdministratorHandler>();
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AdministratorRequirement.PolicyName, p => p.RequireAuthenticatedUser().AddRequirements(new AdministratorRequirement()));
        builder.Services.AddRazorPages(o =>
        {
            o.Conventions.AuthorizeFolder("/Account/Manage");
            o.Conventions.AuthorizeFolder("/Developers");
        });
        return builder;
    }

    public static WebApplication MapAccountPages(this WebApplication app)
    {
        app.MapRazorPages();
        return app;
    }
}
