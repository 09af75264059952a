using System.Xml.Linq;
using ClippyBot.Identity.Data;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace ClippyBot.Identity.Crypto;

/// <summary>
/// The Data Protection key ring lives in a table that the background migration creates; a request arriving in the first
/// moments after start-up must wait for it rather than fail (or, worse, mint a key that cannot be stored).
/// </summary>
internal sealed class MigratedXmlRepository(IXmlRepository inner, MigrationStatus<IdentityDataContext> migrations) : IXmlRepository
{
    private static readonly TimeSpan MaxWait = TimeSpan.FromMinutes(2);

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        WaitForSchema();
        return inner.GetAllElements();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        WaitForSchema();
        inner.StoreElement(element, friendlyName);
    }

    // Data Protection's repository API is synchronous; this blocks only until the schema exists (normally never).
    private void WaitForSchema()
    {
        if (!migrations.Completed)
        {
            migrations.WhenCompleted(CancellationToken.None).Wait(MaxWait);
        }
    }
}
