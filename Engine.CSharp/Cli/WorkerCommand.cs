using System.CommandLine;
using System.Net;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Models.Parallelism;
using Orleans;
using TorchSharp;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve worker</c>: one node's Orleans silo. It owns the node's devices (CUDA where TorchSharp
/// sees them, else as many logical CPU devices as the cluster file gives the node) and hosts the
/// replicas the cluster's plan puts there; <c>oserve serve --membership ...</c> is the front end.
/// </summary>
public static class WorkerCommand
{
    private static readonly Option<string> NodeName = new("--node") { Description = "This worker's node, as the cluster file names it (devices are NODE/0, NODE/1, ...)", Required = true };
    private static readonly Option<string> ClusterRef = new("--cluster") { Description = "Cluster file or built-in name (e.g. cpu-3node) the node belongs to", Required = true };
    internal static readonly Option<string> Membership = new("--membership") { Description = "Where membership lives: 'localhost' (the first worker holds it; one machine) or redis://HOST:PORT", DefaultValueFactory = _ => "localhost" };
    internal static readonly Option<string?> ClusterId = new("--cluster-id") { Description = "Orleans cluster id shared by the cluster's workers and front ends; default: the cluster file's name" };
    internal static readonly Option<bool> FastFailureDetection = new("--fast-failure-detection") { Description = "Declare a silent worker dead in about 2 s (1 s probes, 2 misses, 1 vote): loopback tests and drills, not real networks" };
    private static readonly Option<int> SiloPort = new("--silo-port") { Description = "Port for silo-to-silo traffic", DefaultValueFactory = _ => 11111 };
    private static readonly Option<int> GatewayPort = new("--gateway-port") { Description = "Port front ends connect to", DefaultValueFactory = _ => 30000 };
    private static readonly Option<int> PrimarySiloPort = new("--primary-silo-port") { Description = "localhost membership: the silo port of the worker holding the table", DefaultValueFactory = _ => 11111 };
    private static readonly Option<string> Advertise = new("--advertise") { Description = "Address the other workers and front ends reach this one at", DefaultValueFactory = _ => "127.0.0.1" };
    private static readonly Option<bool> Kubernetes = new("--kubernetes") { Description = "Running in a Kubernetes pod: endpoints and cluster id come from the pod (Orleans Kubernetes hosting)" };
    private static readonly Option<bool> HostWeights = new("--weights-from-host") { Description = "New replicas take weights from this worker's own copy, never from a peer worker (the controller's choice; the hot copy across nodes is the default)" };
    private static readonly Option<string?> Model = new("--model") { Description = "Checkpoint (llama2.c .bin or Hugging Face directory); default: the built-in random-weight model" };
    private static readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "llama2.c tokenizer .bin, when not beside the checkpoint" };
    private static readonly Option<string> DType = new("--dtype") { Description = "float32, bfloat16 or float16", DefaultValueFactory = _ => "float32" };
    private static readonly Option<long> Seed = new("--seed") { Description = "Seed of the built-in model's random weights (every worker and the front end must agree)", DefaultValueFactory = _ => 1234 };
    private static readonly Option<string[]> ServedName = new("--served-model-name") { Description = "Name clients use in 'model'", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<int> MaxNumSeqs = new("--max-num-seqs") { Description = "Most sequences in one step of a replica", DefaultValueFactory = _ => 64 };
    private static readonly Option<int> MaxBatchedTokens = new("--max-num-batched-tokens") { Description = "Token budget of one step", DefaultValueFactory = _ => 2048 };
    private static readonly Option<int> BlockSize = new("--block-size") { Description = "Tokens per KV block", DefaultValueFactory = _ => 16 };
    private static readonly Option<int?> MaxModelLen = new("--max-model-len") { Description = "Longest prompt + output; default: the model's context (the front end must use the same)" };
    private static readonly Option<double> KvCacheGib = new("--kv-cache-gib") { Description = "KV cache memory per replica, GiB", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<int?> Threads = new("--threads") { Description = "Torch CPU threads; default: all cores" };
    private static readonly Option<double> ReplanGrace = new("--replan-grace")
    {
        Description = "Seconds a plan's worker must stay declared dead before the controller re-plans with CP-SAT on the live workers' devices", DefaultValueFactory = _ => 10,
    };
    private static readonly Option<bool> CrossNodePp = new("--cross-node-pp")
    {
        Description = "Re-plans and the controller loop may give a replica pipeline stages on several nodes (activations pass worker to worker); by default every replica stays on one node",
    };
    private static readonly Option<bool> NoReplan = new("--no-replan") { Description = "On a worker's death only drop its replicas from the plan (no CP-SAT re-plan)" };
    private static readonly Option<double?> ControllerWindow = new("--controller-window")
    {
        Description = "Seconds per window of the forecasting controller loop (forecast the front ends' arrivals, CP-SAT plan, switch when the planner says so), give every worker the same value: the plan controller runs on any of them; default: off",
    };
    private static readonly Option<string> InFlight = new("--in-flight")
    {
        Description = "What a replica a switch retires does with its requests (the plan controller's choice, give every worker the same): migrate (move them, KV cache included, to the new plan's replicas) or drain (finish where they are)",
        DefaultValueFactory = _ => "migrate",
    };
    private static readonly Option<int> FinishInPlaceSteps = new("--finish-in-place-steps")
    {
        Description = "Under --in-flight migrate, a started request with at most this many engine steps left finishes on the retiring replica (0: every request moves)", DefaultValueFactory = _ => 0,
    };
    private static readonly Option<string?> Profile = new("--profile") { Description = "Cost-model profile (`oserve profile`) the re-planning prices with; default: the planner's defaults" };

    public static Command Create()
    {
        var command = new Command("worker", "Run one node of a multi-node deployment: an Orleans silo owning the node's devices and the plan's replicas on them (see Engine.Runtime/Distributed/README.md).")
        {
            NodeName, ClusterRef, Membership, ClusterId, FastFailureDetection, SiloPort, GatewayPort, PrimarySiloPort, Advertise, Kubernetes, HostWeights,
            Model, Tokenizer, DType, Seed, ServedName, MaxNumSeqs, MaxBatchedTokens, BlockSize, MaxModelLen, KvCacheGib, Threads,
            ReplanGrace, NoReplan, CrossNodePp, Profile, ControllerWindow, InFlight, FinishInPlaceSteps,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var output = parse.InvocationConfiguration.Output;
        var node = parse.GetValue(NodeName)!;
        var cluster = Catalog.Cluster(parse.GetValue(ClusterRef)!);
        var spec = cluster.Nodes.FirstOrDefault(n => n.Name == node)
            ?? throw new CliUsageException($"--node: cluster '{cluster.Name}' has no node '{node}' (it has {string.Join(", ", cluster.Nodes.Select(n => n.Name))})");
        var membership = ParseMembership(parse.GetValue(Membership)!);
        if (!IPAddress.TryParse(parse.GetValue(Advertise), out var advertise))
            throw new CliUsageException($"--advertise: '{parse.GetValue(Advertise)}' is not an IP address");
        foreach (var (option, port) in new[] { ("--silo-port", parse.GetValue(SiloPort)), ("--gateway-port", parse.GetValue(GatewayPort)), ("--primary-silo-port", parse.GetValue(PrimarySiloPort)) })
            if (port is < 1 or > 65535) throw new CliUsageException($"{option}: must be in 1..65535, got {port}");
        if (parse.GetValue(Threads) is { } threads)
        {
            if (threads < 1) throw new CliUsageException($"--threads: must be at least 1, got {threads}");
            torch.set_num_threads(threads);
        }
        var settings = new EngineSettings
        {
            MaxNumSeqs = parse.GetValue(MaxNumSeqs), MaxNumBatchedTokens = parse.GetValue(MaxBatchedTokens), BlockSize = parse.GetValue(BlockSize),
            MaxModelLen = parse.GetValue(MaxModelLen), KvCacheGib = parse.GetValue(KvCacheGib),
        };
        var modelPath = parse.GetValue(Model);
        using var model = ServeCommand.LoadModel(modelPath, parse.GetValue(Tokenizer), ServeCommand.ParseDType(parse.GetValue(DType)!), parse.GetValue(Seed));
        try { LocalEngineBuilder.SchedulerConfigFor(model, settings); }
        catch (ArgumentException e) { throw new CliUsageException(e.Message.Replace($" (Parameter '{e.ParamName}')", "")); }
        IWeightStore storage = modelPath is null ? new RandomWeightStore(model.Config, parse.GetValue(Seed)) : new CheckpointWeightStore(modelPath);
        var pool = torch.cuda.is_available() && torch.cuda.device_count() > 0 ? DevicePool.Cuda(node) : DevicePool.Logical(spec.Gpus, node);
        var names = parse.GetValue(ServedName) ?? [];
        if (!(parse.GetValue(ReplanGrace) >= 0))
            throw new CliUsageException($"--replan-grace: must be a number of seconds >= 0, got {parse.GetValue(ReplanGrace)}");
        if (parse.GetValue(ControllerWindow) is { } window && !(window > 0 && double.IsFinite(window)))
            throw new CliUsageException($"--controller-window: must be a positive number of seconds, got {window}");
        var planning = new ReplanSettings
        {
            Hardware = cluster, Model = ModelCardOf.Llama(model.Config, names.Length > 0 ? names[0] : model.Name, model.Model.DType),
            Coefficients = PlanningInputs.Coefficients(parse.GetValue(Profile)), Grace = TimeSpan.FromSeconds(parse.GetValue(ReplanGrace)),
            CrossNodePipelines = parse.GetValue(CrossNodePp),
        };
        var replan = parse.GetValue(NoReplan) ? null : planning;
        var inFlight = DemoCommand.ParseInFlight(parse.GetValue(InFlight));
        if (parse.GetValue(FinishInPlaceSteps) is < 0 and var steps)
            throw new CliUsageException($"--finish-in-place-steps: must be 0 or more, got {steps}");
        var loop = parse.GetValue(ControllerWindow) is { } seconds ? new LoopSettings { Planning = planning, Window = TimeSpan.FromSeconds(seconds) } : null;

        var options = new WorkerHostOptions
        {
            Node = node, ClusterId = parse.GetValue(ClusterId) ?? cluster.Name, Membership = membership,
            SiloPort = parse.GetValue(SiloPort), GatewayPort = parse.GetValue(GatewayPort), PrimarySiloPort = parse.GetValue(PrimarySiloPort),
            AdvertisedAddress = advertise, Kubernetes = parse.GetValue(Kubernetes),
            FailureDetection = parse.GetValue(FastFailureDetection) ? FailureDetection.Fast : FailureDetection.Default,
            Controller = new ControllerSettings
            {
                WeightsFromPeers = !parse.GetValue(HostWeights), Replan = replan, Loop = loop,
                InFlight = inFlight, FinishInPlaceMaxSteps = parse.GetValue(FinishInPlaceSteps),
            },
        };
        using var host = ClusterHosting.BuildWorker(options, services => new WorkerNode(
            new WorkerOptions { Node = node, Engine = settings, ServedName = names.Length > 0 ? names[0] : null },
            model, storage, pool, services.GetRequiredService<IGrainFactory>(), services.GetRequiredService<ILogger<WorkerNode>>()));
        output.WriteLine($"model: {model.Description}");
        output.WriteLine($"worker {node} of cluster {options.ClusterId} ({membership}): {pool}; silo port {options.SiloPort}, gateway port {options.GatewayPort}");
        await host.StartAsync(cancellationToken);
        output.WriteLine($"worker {node}: joined");
        // Ends on SIGTERM/SIGINT (the host's console lifetime) or when the command is cancelled; either way the silo leaves the cluster.
        await host.WaitForShutdownAsync(cancellationToken);
        output.WriteLine($"worker {node}: left the cluster");
        return OServeCli.ExitOk;
    }

    internal static MembershipSpec ParseMembership(string text)
    {
        try { return MembershipSpec.Parse(text); }
        catch (ArgumentException e) { throw new CliUsageException(e.Message); }
    }
}
