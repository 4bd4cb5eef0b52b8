using System.CommandLine;
using System.Globalization;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using OServe.Models;
using TorchSharp;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve serve</c>: one replica of a model behind the OpenAI-compatible server. Flags follow
/// vLLM's where they mean the same (--max-num-seqs, --max-num-batched-tokens, --block-size,
/// --max-model-len, --served-model-name, --api-key).
/// </summary>
public static class ServeCommand
{
    private static readonly ModelChoice Choice = new();
    private static readonly Option<string> Host = new("--host") { Description = "Address to bind (loopback by default)", DefaultValueFactory = _ => "127.0.0.1" };
    private static readonly Option<int> Port = new("--port") { Description = "TCP port (0 picks a free one)", DefaultValueFactory = _ => 8000 };
    private static readonly Option<string?> ApiKey = new("--api-key") { Description = "Require 'Authorization: Bearer KEY' on every route but /health (also from OSERVE_API_KEY)" };
    private static readonly Option<bool> MetricsWithoutKey = new("--metrics-without-key") { Description = "With --api-key: serve GET /metrics without the key, for scrapers" };
    private static readonly Option<long?> MaxPromptBytes = new("--max-prompt-bytes") { Description = "Longest prompt in UTF-8 bytes; default: the context length x the longest token's bytes (a longer prompt cannot fit)" };
    private static readonly Option<double> RequestTimeout = new("--request-timeout") { Description = "Seconds one request may run before the engine aborts it (0: no limit)", DefaultValueFactory = _ => 600 };
    private static readonly Option<string[]> ServedName = new("--served-model-name") { Description = "Name(s) clients use in 'model'", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<int> MaxNumSeqs = new("--max-num-seqs") { Description = "Most sequences in one step", DefaultValueFactory = _ => 64 };
    private static readonly Option<int> MaxBatchedTokens = new("--max-num-batched-tokens") { Description = "Token budget of one step (prefill and decode together)", DefaultValueFactory = _ => 2048 };
    private static readonly Option<int> BlockSize = new("--block-size") { Description = "Tokens per KV block", DefaultValueFactory = _ => 16 };
    private static readonly Option<int?> MaxModelLen = new("--max-model-len") { Description = "Longest prompt + output; default: the model's context" };
    private static readonly Option<double> KvCacheGib = new("--kv-cache-gib") { Description = "Memory for the paged KV cache, GiB", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<int> AdmissionCapacity = new("--admission-capacity") { Description = "Requests queued before new ones get 429 + Retry-After", DefaultValueFactory = _ => 1024 };
    private static readonly Option<int?> Threads = new("--threads") { Description = "Torch CPU threads; default: all cores" };
    private static readonly Option<string?> PlanFile = new("--plan") { Description = "Serve the replicas this plan (YAML) lists, routed by type; GET/PUT /v1/plan read and switch it live" };
    private static readonly Option<string?> ClusterRef = new("--cluster") { Description = "Cluster (file or built-in name, e.g. cpu-logical-4) the plan's devices belong to; default: the plan's cluster by name" };
    // Multi-node serving (Engine.Runtime/Distributed): the plan's replicas run on `oserve worker` processes.
    private static readonly Option<string?> InFlight = new("--in-flight")
    {
        Description = "With --plan: what a live switch does with the requests on replicas it retires: migrate (move them to the new replicas with their KV cache; the default) or drain (finish where they are). Across workers, give it to `oserve worker`",
    };
    private static readonly Option<int?> FinishInPlaceSteps = new("--finish-in-place-steps")
    {
        Description = "With --plan and migrate: a started request with at most this many engine steps left finishes on the retiring replica (default 0: every request moves)",
    };
    private static readonly Option<string?> Membership = new("--membership") { Description = "Serve --plan across `oserve worker` processes: 'localhost' or redis://HOST:PORT (where the workers' membership lives)" };
    private static readonly Option<string?> ClusterId = new("--cluster-id") { Description = "With --membership: the workers' Orleans cluster id; default: the cluster's name" };
    private static readonly Option<string> GatewayPorts = new("--gateway-ports") { Description = "With --membership localhost: the workers' gateway ports, comma-separated", DefaultValueFactory = _ => "30000" };
    private static readonly Option<bool> FastFailureDetection = new("--fast-failure-detection") { Description = "With --membership: the workers' loopback failure-detection timing (tests, drills)" };

    public static Command Create()
    {
        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (POST /v1/completions, /v1/chat/completions; GET /v1/models, /health, /metrics); with --plan, the plan's replicas and GET/PUT /v1/plan.")
        {
            Host, Port, ApiKey, MetricsWithoutKey, MaxPromptBytes, RequestTimeout, ServedName, MaxNumSeqs, MaxBatchedTokens, BlockSize, MaxModelLen,
            KvCacheGib, AdmissionCapacity, Threads, PlanFile, ClusterRef, InFlight, FinishInPlaceSteps, Membership, ClusterId, GatewayPorts, FastFailureDetection,
        };
        Choice.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(parse, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var output = parse.InvocationConfiguration.Output;
        var names = parse.GetValue(ServedName) ?? [];
        var serveOptions = new ServeOptions
        {
            Host = parse.GetValue(Host)!,
            Port = parse.GetValue(Port),
            ApiKey = parse.GetValue(ApiKey) ?? Environment.GetEnvironmentVariable("OSERVE_API_KEY"),
            IsMetricsOpen = parse.GetValue(MetricsWithoutKey),
            MaxPromptBytes = parse.GetValue(MaxPromptBytes),
            RequestTimeout = Timeout(parse.GetValue(RequestTimeout)),
            ServedModelNames = names,
        };
        var settings = new EngineSettings
        {
            MaxNumSeqs = parse.GetValue(MaxNumSeqs),
            MaxNumBatchedTokens = parse.GetValue(MaxBatchedTokens),
            BlockSize = parse.GetValue(BlockSize),
            MaxModelLen = parse.GetValue(MaxModelLen),
            KvCacheGib = parse.GetValue(KvCacheGib),
            AdmissionCapacity = parse.GetValue(AdmissionCapacity),
        };
        Check(() => serveOptions.Validate());
        if (parse.GetValue(Threads) is { } threads)
        {
            if (threads < 1) throw new CliUsageException($"--threads: must be at least 1, got {threads}");
            torch.set_num_threads(threads);
        }

        var modelPath = parse.GetValue(Choice.Model);
        var switching = SwitchOptionsOf(parse);
        if (parse.GetValue(Membership) is { } membership)
        {
            if (switching is not null)
                throw new CliUsageException("--in-flight, --finish-in-place-steps: across workers the plan controller runs on the workers; give them to `oserve worker`");
            // The front end runs no replica: the model's shape and tokenizer, not its weights.
            var shape = Choice.LoadShape(parse);
            output.WriteLine($"model: {shape.Description}");
            var planFile = parse.GetValue(PlanFile) ?? throw new CliUsageException("--membership: serving across workers needs --plan");
            var cluster = new OServe.Engine.Distributed.ClusterFrontEndOptions
            {
                PlanPath = planFile, ClusterRef = parse.GetValue(ClusterRef), Membership = WorkerCommand.ParseMembership(membership),
                ClusterId = parse.GetValue(ClusterId), GatewayPorts = ParsePorts(parse.GetValue(GatewayPorts)!),
                FailureDetection = parse.GetValue(FastFailureDetection) ? OServe.Engine.Distributed.FailureDetection.Fast : OServe.Engine.Distributed.FailureDetection.Default,
            };
            await OServe.Engine.Distributed.ClusterFrontEnd.RunAsync(cluster, serveOptions, shape, Choice.ResolveDType(parse, Choice.ResolveDevice(parse)), settings, names.Length > 0 ? names[0] : null,
                (name, dir) => Catalog.Cluster(name, dir), output, cancellationToken);
            return OServeCli.ExitOk;
        }
        using var model = Choice.Load(parse);
        output.WriteLine($"model: {model.Description}");
        if (parse.GetValue(PlanFile) is { } planPath)
        {
            IWeightStore storage = modelPath is null ? new RandomWeightStore(model.Config, parse.GetValue(Choice.Seed)) : new CheckpointWeightStore(modelPath);
            // On a GPU the plan's devices node0/0.. are the CUDA devices; on the CPU they are logical devices of the plan's cluster.
            var devices = model.Model.Device.type == TorchSharp.DeviceType.CUDA ? OServe.Models.Parallelism.DevicePool.Cuda() : null;
            await using var runtime = StartPlan(planPath, parse.GetValue(ClusterRef), model, storage, settings, names.Length > 0 ? names[0] : null, output, devices, switching);
            await ServerHost.RunAsync(serveOptions, runtime, engineClock: () => runtime.Clock.Now, cancellationToken: cancellationToken,
                mapEndpoints: app => PlanEndpoints.Map(app, runtime));
            return OServeCli.ExitOk;
        }
        AsyncEngine engine;
        try
        {
            engine = Check(() => LocalEngineBuilder.Create(model, settings, names.Length > 0 ? names[0] : null));
        }
        catch (Exception e) when (e is not (CliUsageException or OperationCanceledException))
        {
            throw new CliUsageException($"serve: could not build the engine: {e.Message}");
        }
        await using (engine)
        {
            await ServerHost.RunAsync(serveOptions, engine, engineClock: () => engine.Clock.Now, cancellationToken: cancellationToken);
        }
        return OServeCli.ExitOk;
    }

    /// <summary>--in-flight and --finish-in-place-steps as switch options; null when neither is given (the runtime's defaults).</summary>
    private static SwitchOptions? SwitchOptionsOf(ParseResult parse)
    {
        var inFlight = parse.GetValue(InFlight);
        var steps = parse.GetValue(FinishInPlaceSteps);
        if (inFlight is null && steps is null)
            return null;
        if (steps is < 0)
            throw new CliUsageException($"--finish-in-place-steps: must be 0 or more, got {steps}");
        if (parse.GetValue(PlanFile) is null)
            throw new CliUsageException("--in-flight, --finish-in-place-steps: only a plan (--plan) switches live");
        return new SwitchOptions { InFlight = DemoCommand.ParseInFlight(inFlight ?? "migrate"), FinishInPlaceMaxSteps = steps ?? 0 };
    }

    /// <summary>
    /// Reads and checks the plan (file:line errors, against the cluster and the loaded model's own
    /// card), then builds its replicas.
    /// </summary>
    public static PlanRuntime StartPlan(string planPath, string? clusterRef, LoadedModel model, IWeightStore storage,
        EngineSettings settings, string? servedName, TextWriter output, OServe.Models.Parallelism.DevicePool? devices = null, SwitchOptions? switching = null)
    {
        var plan = ContractYaml.LoadPlan(planPath);
        var cluster = Catalog.Cluster(clusterRef ?? plan.Value.Cluster, Path.GetDirectoryName(Path.GetFullPath(planPath)));
        var options = new PlanRuntimeOptions { Engine = settings, ServedName = servedName, Devices = devices, Switch = switching ?? new SwitchOptions() };
        var card = ModelCardOf.Llama(model.Config, servedName ?? model.Name, model.Model.DType);
        var errors = PlanChecks.Validate(plan.Value, cluster, card, plan.Lines).ToList();
        errors.AddRange(ReplicaBuilderRules.Unsupported(plan.Value, model.Config).Select(u => plan.Lines.Error(u.Field, u.Message)));
        if (plan.Value.Replicas.Count == 0)
            errors.Add(plan.Lines.Error("replicas", "the plan has no replicas: `serve` would have nowhere to send requests"));
        if (errors.Count > 0) throw new ContractException(errors);
        PlanRuntime runtime;
        try
        {
            runtime = Check(() => PlanRuntime.Start(plan.Value, cluster, model, storage, options));
        }
        catch (Exception e) when (e is not (CliUsageException or ContractException or PlanRejectedException or OperationCanceledException))
        {
            // Start-up problems are one line and exit 2, never a stack trace.
            throw new CliUsageException($"--plan {planPath}: could not build its replicas: {e.Message}");
        }
        output.WriteLine($"plan v{plan.Value.Version} on {cluster.Name}: {string.Join(", ", runtime.Replicas)}");
        return runtime;
    }

    private static int[] ParsePorts(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p =>
            int.TryParse(p, out var port) && port is > 0 and <= 65535 ? port : throw new CliUsageException($"--gateway-ports: '{p}' is not a port (1..65535)")).ToArray();

    /// <summary>The model at <paramref name="path"/>, or the built-in random-weight one when no path is given.</summary>
    public static LoadedModel LoadModel(string? path, string? tokenizer, torch.ScalarType dtype, long seed)
    {
        if (path is null) return BuiltInModel.Create(new BuiltInModelOptions { Seed = seed, DType = dtype });
        try
        {
            return ModelLoader.Load(path, torch.CPU, dtype, tokenizer);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A file that is not a model, a wrong tokenizer, too little memory: one line, no trace.
            throw new CliUsageException($"--model {path}: {e.Message}");
        }
    }

    private static TimeSpan? Timeout(double seconds) =>
        seconds == 0 ? null
        : double.IsFinite(seconds) && seconds > 0 && seconds <= 86_400 ? TimeSpan.FromSeconds(seconds)
        : throw new CliUsageException($"--request-timeout: must be 0 (no limit) or a number of seconds up to 86400, got {seconds}");

    public static torch.ScalarType ParseDType(string text) => text.ToLower(CultureInfo.InvariantCulture) switch
    {
        "float32" or "fp32" or "float" => torch.ScalarType.Float32,
        "bfloat16" or "bf16" => torch.ScalarType.BFloat16,
        "float16" or "fp16" or "half" => torch.ScalarType.Float16,
        _ => throw new CliUsageException($"--dtype: '{text}' is not one of float32, bfloat16, float16"),
    };

    private static T Check<T>(Func<T> make)
    {
        try { return make(); }
        catch (ArgumentException e) { throw new CliUsageException(e.Message.Replace($" (Parameter '{e.ParamName}')", "")); }
    }

    private static void Check(Action validate) => Check(() => { validate(); return 0; });
}
