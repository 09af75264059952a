using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.Api.Detection;
using ClippyBot.Api.Incidents;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClippyBot.Tests.Api;

/// <summary>
/// #23 notification within 72 hours: once an incident is marked "personal data affected" the clock runs; notifying mails
/// every affected person and every owner of an affected workspace through real SMTP (once each), records what became of each
/// mail, and an incident past its 72 hours with nobody told raises a critical alert (the Api's clock shifted, not waited).
/// </summary>
[TestClass]
public sealed class BreachNotificationTests
{
    private static readonly string AdminEmail = OidcFlows.NewEmail();
    private static readonly ShiftedClock ApiClock = new();
    private static ApiTestbed s_testbed = null!;
    private static HttpClient s_admin = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var ct = context.CancellationToken;
        s_testbed = await ApiTestbed.StartAsync(ct, apiServices: services => services.AddSingleton<TimeProvider>(ApiClock),
            // Rounds of the alert rules only when a test runs one: the overdue test shifts the Api's clock for a moment.
            apiSettings: new Dictionary<string, string?>
            {
                ["Incidents:CheckInterval"] = "00:00:01", ["Detection:EvaluationInterval"] = "01:00:00", ["RateLimits:Sensitive:PermitLimit"] = "1000",
            },
            identitySettings: new Dictionary<string, string?> { ["Identity:Administrators:0"] = AdminEmail });
        s_admin = await ApiHost.NewAdministratorAsync(s_testbed.Identity, s_testbed.Api, AdminEmail, ct);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        s_admin.Dispose();
        await s_testbed.DisposeAsync();
    }

    [TestMethod]
    public async Task Notifying_mails_each_affected_person_and_each_owner_once_through_SMTP_and_records_every_delivery()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Breached workspace", Ct);
        var member = await s_testbed.JoinAsync(owner.Client, workspaceId, "member", Ct);
        var unverified = await s_testbed.NewUserAsync(Ct, verified: false);
        var bystander = await s_testbed.NewUserAsync(Ct);
        var id = await IncidentTests.OpenAsync(s_admin, "Files exposed by a misconfigured share", Ct);
        var notice = new
        {
            whatHappened = "A sharing setting exposed files to signed-in users of other workspaces for two hours.",
            whatData = "Names and contents of files you uploaded.",
            whatWeDid = "We closed the setting, revoked the sessions involved and reviewed every access.",
            whatYouShouldDo = "Check the files listed in your workspace; no password change is needed.",
        };

        using (var early = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/notify", notice, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Conflict, early.StatusCode, "personal data not marked yet");
        }
        using (var marked = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/personal-data", new { description = "file names and contents" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, marked.StatusCode, await marked.Content.ReadAsStringAsync(Ct));
            var summary = await marked.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual(summary.GetProperty("personalDataAffectedAt").GetDateTimeOffset().AddHours(72), summary.GetProperty("notifyBy").GetDateTimeOffset(), "the 72-hour clock is shown");
            Assert.IsFalse(summary.GetProperty("notificationOverdue").GetBoolean());
        }
        using (var affected = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/affected",
                   new { userIds = new[] { member.Subject, unverified.Subject }, workspaceIds = new[] { workspaceId } }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, affected.StatusCode, await affected.Content.ReadAsStringAsync(Ct));
        }
        using (var missing = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/notify", notice with { whatWeDid = "" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, missing.StatusCode, "people read exactly this: every part is needed");
        }

        using (var notified = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/notify", notice, Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, notified.StatusCode, await notified.Content.ReadAsStringAsync(Ct));
            var result = await notified.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual(1, result.GetProperty("people").GetInt32(), result.ToString());
            Assert.AreEqual(1, result.GetProperty("owners").GetInt32());
            Assert.AreEqual(1, result.GetProperty("withoutAddress").GetInt32());
        }
        var personMail = await TestRig.Smtp.WaitForAsync(member.Email, "Important: a security incident affected your ClippyBot data", Ct);
        foreach (var text in new[] { notice.whatHappened, notice.whatData, notice.whatWeDid, notice.whatYouShouldDo, id.ToString() })
        {
            StringAssert.Contains(personMail.Text, text);
        }
        var ownerMail = await TestRig.Smtp.WaitForAsync(owner.Email, "Security incident affecting your ClippyBot workspace \"Breached workspace\"", Ct);
        StringAssert.Contains(ownerMail.Text, notice.whatHappened);
        Assert.IsEmpty((await TestRig.Smtp.MessagesToAsync(bystander.Email, Ct)).Where(m => m.Text.Contains(id.ToString(), StringComparison.Ordinal)).ToList());

        // Delivery is recorded per person, from the outbox.
        var notifications = await Poll.UntilAsync(async () =>
        {
            var detail = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/incidents/{id}", Ct);
            var list = detail.GetProperty("notifications").EnumerateArray().ToList();
            return list.Count == 3 && list.Count(n => n.GetProperty("deliveredAt").ValueKind == JsonValueKind.String) == 2 ? list : null;
        }, TimeSpan.FromSeconds(30), "both mails are recorded as delivered", Ct);
        Assert.AreEqual("No verified address (or the account is gone).",
            notifications.Single(n => n.GetProperty("userId").GetString() == unverified.Subject).GetProperty("failure").GetString());
        Assert.AreEqual("owner", notifications.Single(n => n.GetProperty("userId").GetString() == owner.Subject).GetProperty("audience").GetString());

        // Notifying again tells nobody twice.
        using (var again = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/notify", notice, Ct))
        {
            var result = await again.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual(0, result.GetProperty("people").GetInt32() + result.GetProperty("owners").GetInt32());
        }
        Assert.HasCount(1, (await TestRig.Smtp.MessagesToAsync(member.Email, Ct)).Where(m => m.Text.Contains(id.ToString(), StringComparison.Ordinal)).ToList());
        var audit = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?action=incident.notified&pageSize=200", Ct);
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("target").GetString() == $"{id}:1p:1o:1x"));
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("target").GetString() == id.ToString() && e.GetProperty("outcome").GetString() == "refused"));
    }

    [TestMethod]
    public async Task An_incident_past_its_72_hours_with_nobody_told_raises_a_critical_alert_that_the_administrators_are_mailed()
    {
        var id = await IncidentTests.OpenAsync(s_admin, "Database snapshot copied", Ct);
        var notified = await IncidentTests.OpenAsync(s_admin, "Told in time", Ct);
        foreach (var incident in new[] { id, notified })
        {
            (await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{incident}/personal-data", new { description = "email addresses" }, Ct)).Dispose();
        }
        var person = await s_testbed.NewUserAsync(Ct);
        (await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{notified}/affected", new { userIds = new[] { person.Subject } }, Ct)).Dispose();
        using (var told = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{notified}/notify",
                   new { whatHappened = "a", whatData = "b", whatWeDid = "c", whatYouShouldDo = "d" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, told.StatusCode, await told.Content.ReadAsStringAsync(Ct));
        }
        var evaluator = s_testbed.Api.Services.GetRequiredService<AlertEvaluator>();
        var notifications = s_testbed.Api.Services.GetServices<IHostedService>().OfType<BreachNotifications>().Single();
        await notifications.CheckAsync(Ct);
        await evaluator.EvaluateAsync(Ct);
        Assert.IsEmpty(await OverdueAlertsAsync(), "within the 72 hours nothing is overdue");

        try
        {
            ApiClock.Advance(TimeSpan.FromHours(73));
            await notifications.CheckAsync(Ct);
            await evaluator.EvaluateAsync(Ct);
            await using var scope = s_testbed.Api.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
            var incident = await db.Incidents.AsNoTracking().SingleAsync(i => i.Id == id, Ct);
            Assert.IsTrue(IncidentEndpoints.Summary(incident, ApiClock.GetUtcNow()).NotificationOverdue, "the incident shows it is overdue");
        }
        finally
        {
            ApiClock.Advance(-TimeSpan.FromHours(73));
        }
        // Mailed on the real clock: a mail queued 73 hours "later" would wait that long in the outbox once the clock is back.
        await using (var scope = s_testbed.Api.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<AlertMail>().SendPendingAsync(Ct);
        }
        var alerts = await OverdueAlertsAsync();
        Assert.HasCount(1, alerts, "the incident told in time raises nothing");
        Assert.AreEqual(id.ToString(), alerts[0].GetProperty("subject").GetString());
        Assert.AreEqual("critical", alerts[0].GetProperty("severity").GetString());
        var mail = await Poll.UntilAsync(async () => (await TestRig.Smtp.MessagesToAsync(AdminEmail, Ct)).FirstOrDefault(m => m.Text.Contains(id.ToString(), StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), "the administrators are told", Ct);
        StringAssert.StartsWith(mail.Subject, "[critical] ClippyBot security alert");
        StringAssert.Contains(mail.Text, "breach-notification-overdue");
    }

    private async Task<List<JsonElement>> OverdueAlertsAsync()
    {
        var page = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/alerts?rule=breach-notification-overdue", Ct);
        return [.. page.GetProperty("alerts").EnumerateArray()];
    }
}
