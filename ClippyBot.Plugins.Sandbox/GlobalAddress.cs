using System.Net;
using System.Net.Sockets;

namespace ClippyBot.Plugins.Sandbox;

/// <summary>
/// Which addresses a plugin may reach: globally routable unicast only, by allow-list, not by a list of known-bad ranges.
/// Everything IANA's special-purpose registries (IPv4: RFC 6890 and updates; IPv6: RFC 6890, 8190 and updates) mark as not
/// globally reachable is refused, and so is multicast. Addresses that carry an IPv4 address inside them — IPv4-mapped,
/// IPv4-compatible, NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16) — are judged by the IPv4 address they
/// lead to; Teredo (2001::/32) hides its destination and is refused.
/// </summary>
public static class GlobalAddress
{
    // IPv4 special-purpose ranges that are not globally reachable, plus multicast and the reserved 240/4.
    private static readonly IPNetwork[] NonGlobalV4 =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.0.0.0/24"), IPNetwork.Parse("192.0.2.0/24"),
        IPNetwork.Parse("192.88.99.0/24"), IPNetwork.Parse("192.168.0.0/16"), IPNetwork.Parse("198.18.0.0/15"), IPNetwork.Parse("198.51.100.0/24"),
        IPNetwork.Parse("203.0.113.0/24"), IPNetwork.Parse("224.0.0.0/4"), IPNetwork.Parse("240.0.0.0/4"),
    ];

    /// <summary>Global unicast (2000::/3) is the only IPv6 space that can be allowed at all.</summary>
    private static readonly IPNetwork GlobalUnicastV6 = IPNetwork.Parse("2000::/3");

    // Inside 2000::/3: IETF protocol assignments (incl. Teredo 2001::/32 and benchmarking), documentation, and the
    // 6to4 relay range's own space is handled by unwrapping below.
    private static readonly IPNetwork[] NonGlobalV6 =
    [
        IPNetwork.Parse("2001::/23"), IPNetwork.Parse("2001:db8::/32"), IPNetwork.Parse("3fff::/20"),
    ];

    private static readonly IPNetwork Nat64WellKnown = IPNetwork.Parse("64:ff9b::/96");
    private static readonly IPNetwork Nat64Local = IPNetwork.Parse("64:ff9b:1::/48");
    private static readonly IPNetwork SixToFour = IPNetwork.Parse("2002::/16");

    /// <summary>True only for an address a plugin may connect to.</summary>
    public static bool IsGloballyRoutable(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return !NonGlobalV4.Any(n => n.Contains(address));
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, deprecated): the IPv4 address decides.
        if (address.IsIPv4MappedToIPv6 || (bytes[..12].IndexOfAnyExcept((byte)0) < 0 && !IPAddress.IPv6Loopback.Equals(address) && !IPAddress.IPv6Any.Equals(address)))
        {
            return IsGloballyRoutable(new IPAddress(bytes[12..]));
        }
        if (Nat64WellKnown.Contains(address))
        {
            return IsGloballyRoutable(new IPAddress(bytes[12..]));
        }
        if (Nat64Local.Contains(address))
        {
            // RFC 8215: a local-use NAT64 prefix leads into the operator's own network: never.
            return false;
        }
        if (SixToFour.Contains(address))
        {
            return IsGloballyRoutable(new IPAddress(bytes[2..6]));
        }
        return GlobalUnicastV6.Contains(address) && !NonGlobalV6.Any(n => n.Contains(address));
    }
}
