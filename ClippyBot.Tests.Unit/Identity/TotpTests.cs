using System.Text;
using ClippyBot.Identity.Crypto;
using Totp = ClippyBot.Identity.Crypto.Totp;

namespace ClippyBot.Tests.Identity;

/// <summary>TOTP against RFC 6238's published vectors, and our acceptance rules: ±1 step, each step once, digits only.</summary>
[TestClass]
public sealed class TotpTests
{
    private static readonly byte[] RfcSecret = Encoding.ASCII.GetBytes("12345678901234567890");

    [TestMethod]
    [DataRow(59L, "94287082")]
    [DataRow(1111111109L, "07081804")]
    [DataRow(1111111111L, "14050471")]
    [DataRow(1234567890L, "89005924")]
    [DataRow(2000000000L, "69279037")]
    [DataRow(20000000000L, "65353130")]
    public void Matches_the_RFC_6238_SHA1_test_vectors(long unixTime, string expected)
    {
        var at = DateTimeOffset.FromUnixTimeSeconds(unixTime);
        Assert.AreEqual(expected, Totp.Compute(RfcSecret, at, digits: 8));
        Assert.IsNotNull(Totp.Verify(RfcSecret, expected, at, lastAcceptedStep: 0, digits: 8));
    }

    [TestMethod]
    public void Accepts_one_step_either_side_and_nothing_further()
    {
        var secret = Totp.NewSecret();
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        Assert.IsNotNull(Totp.Verify(secret, Totp.Compute(secret, now.AddSeconds(-30)), now, 0));
        Assert.IsNotNull(Totp.Verify(secret, Totp.Compute(secret, now.AddSeconds(30)), now, 0));
        Assert.IsNull(Totp.Verify(secret, Totp.Compute(secret, now.AddSeconds(-90)), now, 0));
        Assert.IsNull(Totp.Verify(secret, Totp.Compute(secret, now.AddSeconds(90)), now, 0));
    }

    [TestMethod]
    public void A_step_at_or_before_the_last_accepted_one_is_refused()
    {
        var secret = Totp.NewSecret();
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var code = Totp.Compute(secret, now);
        var step = Totp.Verify(secret, code, now, 0);
        Assert.IsNotNull(step);
        Assert.IsNull(Totp.Verify(secret, code, now, step.Value), "the same code twice");
        Assert.IsNull(Totp.Verify(secret, Totp.Compute(secret, now.AddSeconds(-30)), now, step.Value), "an older code after a newer one");
        Assert.IsNotNull(Totp.Verify(secret, Totp.Compute(secret, now.AddSeconds(30)), now, step.Value), "the next step");
    }

    [TestMethod]
    [DataRow(null)]
    [DataRow("")]
    [DataRow("12345")]
    [DataRow("1234567")]
    [DataRow("12a456")]
    [DataRow("١٢٣٤٥٦")]
    public void Malformed_codes_are_refused(string? code)
    {
        var secret = Totp.NewSecret();
        Assert.IsNull(Totp.Verify(secret, code, DateTimeOffset.UtcNow, 0));
    }

    [TestMethod]
    public void Secrets_are_160_bits_and_the_key_uri_carries_them_in_base32()
    {
        var secret = Totp.NewSecret();
        Assert.HasCount(20, secret);
        var uri = new Uri(Totp.KeyUri(secret, "ClippyBot", "ann@example.test"));
        Assert.AreEqual("otpauth", uri.Scheme);
        StringAssert.Contains(uri.Query, "secret=" + Totp.ToBase32(secret));
        CollectionAssert.AreEqual(secret, OtpNet.Base32Encoding.ToBytes(Totp.ToBase32(secret)));
    }
}
