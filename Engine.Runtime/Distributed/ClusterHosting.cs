using System.Net;
using Orleans.Configuration;
using Orleans.Hosting;
using StackExchange.Redis;

namespace OServe.Engine.Distributed;

/// <summary>
/// How fast Orleans membership declares a silent worker dead. Null fields keep Orleans' defaults
/// (deployments: a worker is dead after several missed probes of seconds each, and two votes).
/// </summary>
public sealed record FailureDetection
{
    public TimeSpan? ProbeTimeout { get; init; }
    public int? NumMissedProbesLimit { get; init; }
    public int? NumVotesForDeathDeclaration { get; init; }

    /// <summary>Orleans' own figures.</summary>
    public static FailureDetection Default { get; } = new();

    /// <summary>
    /// For loopback clusters (tests, the fault drill): two missed 2 s probes and one vote declare a
    /// worker dead, a few seconds after a kill. Too eager for a real network; 1 s probes already
    /// missed on this 2-core machine when other work loaded it, and a falsely declared silo leaves.
    /// </summary>
    public static FailureDetection Fast { get; } = new() { ProbeTimeout = TimeSpan.FromSeconds(2), NumMissedProbesLimit = 2, NumVotesForDeathDeclaration = 1 };

    public bool IsFast => ProbeTimeout is { } t && t <= TimeSpan.FromSeconds(3);
}

/// <summary>What a worker silo needs besides its <see cref="WorkerNode"/>.</summary>
public sealed record WorkerHostOptions
{
    public required string Node { get; init; }

    /// <summary>Orleans cluster id: workers and front ends of one cluster share it (default: the cluster file's name).</summary>
    public required string ClusterId { get; init; }
    public required MembershipSpec Membership { get; init; }
    public int SiloPort { get; init; } = 11111;
    public int GatewayPort { get; init; } = 30000;

    /// <summary>Localhost membership only: the silo port of the worker that holds the membership table.</summary>
    public int PrimarySiloPort { get; init; } = 11111;

    /// <summary>The address other silos and clients reach this one at (loopback by default; a deployment gives the host's).</summary>
    public IPAddress AdvertisedAddress { get; init; } = IPAddress.Loopback;
    public FailureDetection FailureDetection { get; init; } = FailureDetection.Default;
    public ControllerSettings Controller { get; init; } = new();

    /// <summary>Running in a Kubernetes pod: endpoints and cluster id from the pod (Microsoft.Orleans.Hosting.Kubernetes).</summary>
    public bool Kubernetes { get; init; }
}

/// <summary>What the front end's Orleans client needs.</summary>
public sealed record FrontEndHostOptions
{
    public required string ClusterId { get; init; }
    public required MembershipSpec Membership { get; init; }

    /// <summary>Localhost membership only: the workers' gateway ports.</summary>
    public IReadOnlyList<int> GatewayPorts { get; init; } = [30000];
    public FailureDetection FailureDetection { get; init; } = FailureDetection.Default;

    /// <summary>How long the front end keeps trying to reach a first worker before it gives up.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>Builds worker silos and front-end clients: membership, storage for the plan, failure detection, placement.</summary>
public static class ClusterHosting
{
    public const string PlanStorageName = "oserve-plans";

    /// <summary>Response timeout of clients and silos under fast failure detection (Orleans' default: 30 s).</summary>
    public static TimeSpan FastResponseTimeout { get; } = TimeSpan.FromSeconds(5);
    public const string ServiceId = "oserve";

    /// <summary>A worker silo; <paramref name="node"/> builds the node's state once the silo's services exist.</summary>
    public static IHost BuildWorker(WorkerHostOptions options, Func<IServiceProvider, WorkerNode> node, Action<ILoggingBuilder>? logging = null)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        ConfigureLogging(builder.Logging, logging);
        builder.Services.AddSingleton(node);
        builder.Services.AddSingleton(options.Controller);
        builder.UseOrleans(silo =>
        {
            silo.Configure<SiloOptions>(o => o.SiloName = options.Node);
            silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (options.ClusterId, ServiceId));
            if (options.Kubernetes)
                silo.UseKubernetesHosting();
            switch (options.Membership.Kind)
            {
                case MembershipKind.Localhost:
                    silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort,
                        new IPEndPoint(IPAddress.Loopback, options.PrimarySiloPort), ServiceId, options.ClusterId);
                    silo.AddMemoryGrainStorage(PlanStorageName);
                    break;
                case MembershipKind.Redis:
                    var redis = options.Membership.RedisConfiguration!;
                    silo.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
                    silo.AddRedisGrainStorage(PlanStorageName, o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
                    if (!options.Kubernetes)
                        silo.ConfigureEndpoints(options.AdvertisedAddress, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false);
                    break;
            }
            silo.Configure<ClusterMembershipOptions>(o => Apply(o, options.FailureDetection));
            if (options.FailureDetection.IsFast)
                silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = FastResponseTimeout); // a stream heartbeats every half of it
            silo.Services.AddPlacementDirector<NodePlacement, NodePlacementDirector>();
        });
        return builder.Build();
    }

    /// <summary>The front end's Orleans client host; start it, then take its <see cref="Orleans.IClusterClient"/>.</summary>
    public static IHost BuildFrontEndClient(FrontEndHostOptions options, Action<ILoggingBuilder>? logging = null)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        ConfigureLogging(builder.Logging, logging);
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (options.ClusterId, ServiceId));
            switch (options.Membership.Kind)
            {
                case MembershipKind.Localhost:
                    client.UseLocalhostClustering(options.GatewayPorts.ToArray(), ServiceId, options.ClusterId);
                    break;
                case MembershipKind.Redis:
                    var redis = options.Membership.RedisConfiguration!;
                    client.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
                    break;
            }
            if (options.FailureDetection.IsFast)
            {
                // A call lost with a killed worker, or with the gateway it went through, fails within this
                // instead of Orleans' 30 s. A live worker's stream answers a waiting MoveNext with a
                // heartbeat after half of the silo's own timeout (the same figure), so a slow token is not cut.
                client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = FastResponseTimeout);
                client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2));
            }
            var deadline = DateTime.UtcNow + options.ConnectTimeout;
            client.UseConnectionRetryFilter(async (error, cancellationToken) =>
            {
                if (DateTime.UtcNow > deadline)
                    return false;
                await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
                return true;
            });
        });
        return builder.Build();
    }

    private static void Apply(ClusterMembershipOptions o, FailureDetection f)
    {
        if (f.ProbeTimeout is { } probe)
        {
            o.ProbeTimeout = probe;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(Math.Max(2, probe.TotalSeconds * 2));
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(Math.Max(5, probe.TotalSeconds * 5));
        }
        if (f.NumMissedProbesLimit is { } missed)
            o.NumMissedProbesLimit = missed;
        if (f.NumVotesForDeathDeclaration is { } votes)
            o.NumVotesForDeathDeclaration = votes;
    }

    private static void ConfigureLogging(ILoggingBuilder logging, Action<ILoggingBuilder>? custom)
    {
        if (custom is not null)
        {
            custom(logging);
            return;
        }
        logging.AddSimpleConsole(console => console.SingleLine = true);
        logging.AddFilter("Orleans", LogLevel.Warning);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Polly", LogLevel.Warning); // Orleans' placement retries log every attempt at Information
    }
}
