using System.Net;

namespace OServe.Engine.Distributed;

public enum MembershipKind
{
    /// <summary>Orleans development clustering: the first worker (the primary silo) holds the membership table. Tests and one machine only.</summary>
    Localhost,
    /// <summary>Microsoft.Orleans.Clustering.Redis: membership (and the plan) in a Redis server every worker and front end reaches.</summary>
    Redis,
}

/// <summary>
/// Where the cluster's membership lives, from <c>--membership</c>: <c>localhost</c> or
/// <c>redis://HOST:PORT</c> (any StackExchange.Redis configuration after the scheme, e.g.
/// <c>redis://10.0.0.5:6379,password=...</c>).
/// </summary>
public sealed record MembershipSpec(MembershipKind Kind, string? RedisConfiguration)
{
    public static MembershipSpec Localhost { get; } = new(MembershipKind.Localhost, null);

    public static MembershipSpec Redis(string configuration) => new(MembershipKind.Redis, configuration);

    /// <summary>Parses an option value; the message names the option and the accepted forms.</summary>
    public static MembershipSpec Parse(string text, string option = "--membership")
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.Trim();
        if (value.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return Localhost;
        const string scheme = "redis://";
        if (value.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            var config = value[scheme.Length..].TrimEnd('/');
            var endpoint = config.Split(',')[0];
            if (endpoint.Length == 0 || !TryEndpoint(endpoint))
                throw new ArgumentException($"{option}: '{text}' does not name a Redis server as redis://HOST:PORT");
            return Redis(config);
        }
        throw new ArgumentException($"{option}: '{text}' is not 'localhost' or 'redis://HOST:PORT'");
    }

    private static bool TryEndpoint(string endpoint)
    {
        int colon = endpoint.LastIndexOf(':');
        if (colon <= 0)
            return false;
        return int.TryParse(endpoint[(colon + 1)..], out var port) && port is > 0 and <= 65535
            && (IPAddress.TryParse(endpoint[..colon].Trim('[', ']'), out _) || Uri.CheckHostName(endpoint[..colon]) != UriHostNameType.Unknown);
    }

    public override string ToString() => Kind == MembershipKind.Localhost ? "localhost" : $"redis://{RedisConfiguration}";
}
