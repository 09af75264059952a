using System.Net;
using System.Net.Sockets;

namespace ClippyBot.ServiceDefaults.Edge;

/// <summary>
/// The subject every per-address throttle counts: an IPv4 address, or the /64 of an IPv6 one — a single subscriber is
/// routinely given a whole /64, so counting single IPv6 addresses would let one attacker rotate through 2^64 of them.
/// </summary>
public static class ClientAddressKey
{
    public static string Of(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }
}
