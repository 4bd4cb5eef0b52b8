using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OServe.Contracts;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Models;
using OServe.Models.Parallelism;
using Orleans;

namespace OServe.Engine.Tests.Distributed;

/// <summary>
/// Worker silos of one Orleans cluster in this process, on loopback with localhost membership
/// (the first worker holds the table), a front-end client, and the tiny model everywhere.
/// Workers can be stopped without a goodbye (<see cref="CrashAsync"/>): membership must find out.
/// </summary>
internal sealed class LocalCluster : IAsyncDisposable
{
    public const string ModelName = "tiny";

    private readonly Dictionary<string, (IHost Host, LoadedModel Model, int SiloPort, int GatewayPort)> _workers = new(StringComparer.Ordinal);
    private readonly List<IHost> _clients = [];
    private readonly int _primarySiloPort;

    private LocalCluster(string clusterId, int devicesPerNode, FailureDetection failureDetection, ControllerSettings controller, MembershipSpec membership,
        TimeSpan stepPace)
    {
        StepPace = stepPace;
        ClusterId = clusterId;
        Membership = membership;
        DevicesPerNode = devicesPerNode;
        FailureDetection = failureDetection;
        Controller = controller;
        _primarySiloPort = FreePort();
    }

    public string ClusterId { get; }

    /// <summary>Localhost (the first worker holds the table) or a Redis server the test started.</summary>
    public MembershipSpec Membership { get; }
    public int DevicesPerNode { get; }
    public FailureDetection FailureDetection { get; }
    public ControllerSettings Controller { get; }

    /// <summary>Every engine step of every replica takes at least this long (zero: as fast as it runs), so requests are surely in flight when a test acts.</summary>
    public TimeSpan StepPace { get; }

    public static EngineSettings Engine { get; } = new() { MaxNumSeqs = 8, MaxNumBatchedTokens = 512, MaxModelLen = 256, KvCacheGib = 0.02 };

    public static LoadedModel TinyModel() => BuiltInModel.Create(new BuiltInModelOptions
    {
        Dim = 64, HiddenDim = 160, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxSeqLen = 512, Name = ModelName, Seed = 7,
    });

    public static async Task<LocalCluster> StartAsync(IReadOnlyList<string> nodes, int devicesPerNode = 2,
        FailureDetection? failureDetection = null, ControllerSettings? controller = null, MembershipSpec? membership = null, TimeSpan stepPace = default)
    {
        var cluster = new LocalCluster("test-" + Guid.NewGuid().ToString("N")[..8], devicesPerNode,
            failureDetection ?? FailureDetection.Fast, controller ?? new ControllerSettings(), membership ?? MembershipSpec.Localhost, stepPace);
        try
        {
            // The primary first (it holds the membership table), then the others at once.
            await cluster.StartWorkerAsync(nodes[0]);
            await Task.WhenAll(nodes.Skip(1).Select(cluster.StartWorkerAsync));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The hardware description the plans name: every node with <see cref="DevicesPerNode"/> logical devices.</summary>
    public Cluster Hardware(IEnumerable<string> nodes) => new()
    {
        Name = ClusterId,
        GpuTypes = [new GpuType { Name = "cpu-logical", MemoryGib = 4, Tflops = 0.1, HbmGbps = 20 }],
        Nodes = nodes.Select(n => new Node { Name = n, GpuType = "cpu-logical", Gpus = DevicesPerNode, IntraLinkGbps = 10 }).ToArray(),
        InterNodeLinkGbps = 1,
    };

    /// <summary>Starts (or restarts, on new ports) the worker of <paramref name="node"/>; the first one started holds the membership table.</summary>
    public async Task StartWorkerAsync(string node)
    {
        bool isPrimary;
        lock (_workers)
            isPrimary = _workers.Count == 0;
        int siloPort = isPrimary ? _primarySiloPort : FreePort();
        int gatewayPort = FreePort();
        var model = TinyModel();
        var options = new WorkerHostOptions
        {
            Node = node, ClusterId = ClusterId, Membership = Membership,
            SiloPort = siloPort, GatewayPort = gatewayPort, PrimarySiloPort = _primarySiloPort,
            FailureDetection = FailureDetection, Controller = Controller,
        };
        var host = ClusterHosting.BuildWorker(options,
            services => new WorkerNode(new WorkerOptions { Node = node, Engine = Engine, StepObserver = StepPace > TimeSpan.Zero ? new PacedSteps(StepPace) : null }, model, new RandomWeightStore(model.Config, 7),
                DevicePool.Logical(DevicesPerNode, node), services.GetRequiredService<IGrainFactory>(), services.GetRequiredService<ILogger<WorkerNode>>()),
            Quiet);
        await host.StartAsync();
        lock (_workers)
            _workers[node] = (host, model, siloPort, gatewayPort);
    }

    /// <summary>Stops a worker without leaving the cluster (the silo does not announce it): Orleans' probes must declare it dead.</summary>
    public async Task CrashAsync(string node)
    {
        var (host, model, _, _) = _workers[node];
        _workers.Remove(node);
        using var now = new CancellationTokenSource();
        await now.CancelAsync();
        try { await host.StopAsync(now.Token); }
        catch (OperationCanceledException) { }
        host.Dispose();
        model.Dispose();
    }

    /// <summary>A front-end client (Orleans client host) connected to the workers' gateways.</summary>
    public async Task<IClusterClient> ConnectAsync()
    {
        var host = ClusterHosting.BuildFrontEndClient(new FrontEndHostOptions
        {
            ClusterId = ClusterId, Membership = Membership,
            GatewayPorts = _workers.Values.Select(w => w.GatewayPort).ToArray(), FailureDetection = FailureDetection,
        }, Quiet);
        await host.StartAsync();
        _clients.Add(host);
        return host.Services.GetRequiredService<IClusterClient>();
    }

    /// <summary>A front end over the cluster, given <paramref name="plan"/> as its initial plan.</summary>
    public async Task<ClusterRuntime> FrontEndAsync(Plan plan, FrontEndOptions? options = null)
    {
        var client = await ConnectAsync();
        using var model = TinyModel();
        var tokenizer = new ModelTokenizer(model.Tokenizer);
        int maxLen = LocalEngineBuilder.SchedulerConfigFor(model, Engine).MaxModelLen;
        return await ClusterRuntime.StartAsync(client, ClusterId, plan, tokenizer, ModelName, maxLen,
            options ?? new FrontEndOptions { PlanPollInterval = TimeSpan.FromMilliseconds(100) });
    }

    /// <summary>Polls the front end's view until <paramref name="done"/> holds; fails with the controller's last event after <paramref name="timeout"/>.</summary>
    public static async Task WaitForAsync(ClusterRuntime frontEnd, Func<ClusterRuntime, bool> done, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            try
            {
                await frontEnd.RefreshAsync();
            }
            catch (TimeoutException) when (DateTime.UtcNow < deadline)
            {
                // The controller did not answer within the fast response timeout (this machine under a full test run): ask again.
                continue;
            }
            if (done(frontEnd))
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"waited {timeout ?? TimeSpan.FromSeconds(30)} for {what}; epoch {frontEnd.View.Epoch}, live [{string.Join(",", frontEnd.View.LiveNodes)}], " +
                    $"missing [{string.Join("; ", frontEnd.View.MissingReplicas)}], last event: {frontEnd.View.LastEvent}");
            await Task.Delay(100);
        }
    }

    /// <summary>The plan in force has exactly these replica ids.</summary>
    public static Task WaitForReplicasAsync(ClusterRuntime frontEnd, params string[] ids) =>
        WaitForAsync(frontEnd, f => f.Current is { } p && p.Replicas.Select(r => r.Id).Order().SequenceEqual(ids.Order()),
            $"replicas {string.Join(",", ids)} in force");

    // OSERVE_TEST_LOGS=1 shows the workers' and the controller's own logs (and Orleans' warnings) on the console.
    private static void Quiet(ILoggingBuilder logging)
    {
        if (Environment.GetEnvironmentVariable("OSERVE_TEST_LOGS") == "1")
        {
            logging.AddSimpleConsole(c => (c.SingleLine, c.TimestampFormat) = (true, "HH:mm:ss.fff "));
            logging.SetMinimumLevel(LogLevel.Information);
            logging.AddFilter("Orleans", LogLevel.Warning);
            logging.AddFilter("Microsoft", LogLevel.Warning);
        }
        else
            logging.SetMinimumLevel(LogLevel.Critical);
    }

    /// <summary>Sleeps after each step on the replica's loop thread.</summary>
    private sealed class PacedSteps(TimeSpan pace) : IStepObserver
    {
        public void OnStep(in StepRecord step) => Thread.Sleep(pace);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        // Every silo stops at once and without goodbyes: the cluster goes as a whole, and a graceful
        // leave per silo costs seconds each.
        var all = _clients.Concat(_workers.Values.Select(w => w.Host)).ToArray();
        await Task.WhenAll(all.Select(async host =>
        {
            using var now = new CancellationTokenSource();
            await now.CancelAsync();
            try { await host.StopAsync(now.Token); } catch (Exception) { }
            host.Dispose();
        }));
        foreach (var w in _workers.Values)
            w.Model.Dispose();
        _workers.Clear();
    }
}
