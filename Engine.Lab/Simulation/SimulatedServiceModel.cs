using System.Collections.Concurrent;
using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// The planner's processing rate n_{c,j} and latency-vs-load, measured by simulating one replica
/// of config c alone on a stream of type j (PLANNER.md's calibration hook). The planner's analytic
/// steady state assumes a full batch and ignores chunked prefill and how long prompts stall
/// decodes; this model runs the engine's own scheduler with the same step times instead:
/// <list type="bullet">
/// <item>Rate: saturation throughput, with 4 batches' worth of requests queued at time 0, counted
/// between the 25th and 75th percentile of finish times (steady state, no ramp-up or drain).</item>
/// <item>At each utilization u of <see cref="Loads"/>: Poisson arrivals at u * Rate (fixed seed),
/// the first fifth discarded as warm-up; mean E2E (the planner's objective is a mean) and P90
/// TTFT and TPOT (the SLO filter asks for 90% attainment).</item>
/// </list>
/// Between measured loads the curve is linear; past the last one it extends the last segment up
/// to u = 1, where latency is infinite. Curves are cached per (config, links, lengths), so a
/// comparison measures each once for every system and window. Deterministic; thread-safe.
/// </summary>
public sealed class SimulatedServiceModel(CostCoefficients coefficients, int blockSize = 16, int requestsPerLoad = 160) : IServiceModel
{
    /// <summary>Utilizations (fractions of the saturation rate) at which latency is measured.</summary>
    public static readonly double[] Loads = [0.05, 0.3, 0.5, 0.7, 0.85, 0.95];

    private readonly ConcurrentDictionary<string, Lazy<ServiceCurve>> _curves = new(StringComparer.Ordinal);

    public CostCoefficients Coefficients { get; } = coefficients;

    /// <summary>Curves measured so far (each costs 1 + <see cref="Loads"/>.Length short simulations).</summary>
    public int NumCurves => _curves.Count;

    /// <summary>Wall seconds spent measuring curves (offline profiling: not part of a window's solve time).</summary>
    public double MeasureSeconds => Interlocked.Read(ref _measureTicks) / (double)System.Diagnostics.Stopwatch.Frequency;

    private long _measureTicks;

    public ServiceEstimate Estimate(ModelSpec model, ReplicaConfig config, Links links, ReplicaMemory memory, double inputTokens, double outputTokens, double utilization)
    {
        int input = Math.Max(1, (int)Math.Round(inputTokens)), output = Math.Max(1, (int)Math.Round(outputTokens));
        string key = string.Create(CultureInfo.InvariantCulture,
            $"{model.Name}|{config.Label}|{config.CrossNode}|{links}|{memory.KvCapacityTokens}|{input}|{output}");
        var curve = _curves.GetOrAdd(key, _ => new Lazy<ServiceCurve>(() =>
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            var measured = Measure(model, config, links, memory, input, output);
            Interlocked.Add(ref _measureTicks, System.Diagnostics.Stopwatch.GetTimestamp() - start);
            return measured;
        })).Value;
        return curve.At(utilization);
    }

    /// <summary>Measures one curve (exposed for tests and for printing calibration tables).</summary>
    public ServiceCurve Measure(ModelSpec model, ReplicaConfig config, Links links, ReplicaMemory memory, int input, int output)
    {
        // As the analytic model: a request longer than the whole KV cache cannot be served at all.
        if (input + output > memory.KvCapacityTokens) return ServiceCurve.Unservable;
        int blocks = (int)Math.Min(int.MaxValue, memory.KvCapacityTokens / blockSize);
        int maxLen = (int)Math.Min(model.MaxContextTokens, (long)blocks * blockSize);
        // Lengths past the model's context are clipped, as the workload clips trace requests.
        output = Math.Clamp(output, 1, Math.Max(1, maxLen - 1));
        input = Math.Clamp(input, 1, Math.Max(1, maxLen - output));
        int batch = (int)Math.Min(Coefficients.MaxNumSeqs, memory.KvCapacityTokens / (input + output));
        if (batch < 1) return ServiceCurve.Unservable;
        var replica = new ReplicaModel(new SchedulerConfig
        {
            MaxNumSeqs = Coefficients.MaxNumSeqs,
            MaxNumBatchedTokens = new ReplicaSpec { Id = "r", GpuType = config.Gpu.Name, Devices = [] }.MaxNumBatchedTokens,
            BlockSize = blockSize,
            NumKvBlocks = blocks,
            MaxModelLen = maxLen,
        }, new CostModelIterationTime(Coefficients, model, links, config));

        // Saturation: 4 batches queued at once; the middle half of the finishes is steady state.
        int n = Math.Clamp(4 * batch, 64, 1024);
        var finishes = Run(replica, Enumerable.Range(0, n).Select(i => new SimRequest(i, 0, input, output, 0)).ToArray())
            .Select(r => r.FinishS).Order().ToArray();
        int a = n / 4, b = 3 * n / 4;
        double span = finishes[b] - finishes[a];
        double rate = span > 0 ? (b - a) / span : n / Math.Max(1e-9, finishes[^1]);

        var points = new ServicePoint[Loads.Length];
        for (int p = 0; p < Loads.Length; p++)
        {
            double lambda = Loads[p] * rate;
            var random = new Random(7919 + p);
            double t = 0;
            var requests = new SimRequest[requestsPerLoad];
            for (int i = 0; i < requests.Length; i++)
            {
                t += -Math.Log(1 - random.NextDouble()) / lambda;
                requests[i] = new SimRequest(i, t, input, output, 0);
            }
            var records = Run(replica, requests).Skip(requestsPerLoad / 5).ToArray();
            var ttft = records.Select(r => r.Ttft).Order().ToArray();
            var tpot = records.Select(r => r.Tpot).Order().ToArray();
            points[p] = new ServicePoint(Loads[p], Percentile(ttft, 0.9), Percentile(tpot, 0.9), records.Average(r => r.E2e));
        }
        return new ServiceCurve(rate, batch, points);
    }

    private static IReadOnlyList<RequestRecord> Run(ReplicaModel replica, SimRequest[] requests)
    {
        var plan = new Plan
        {
            Model = "calibration",
            Cluster = "calibration",
            RequestTypes = [],
            Routing = [],
            Replicas = [new ReplicaSpec { Id = "r0", GpuType = "calibration", Devices = [] }],
        };
        var sim = new Simulation(new SimulationSetup { Requests = requests, Plans = [plan], ReplicaModels = _ => replica, TypeNames = ["t"] });
        sim.Run();
        return sim.Metrics.Records;
    }

    private static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}

/// <summary>Latency of one replica at utilization U of its saturation rate.</summary>
public readonly record struct ServicePoint(double U, double TtftP90, double TpotP90, double E2eMean);

/// <summary>A measured rate and latency-vs-load curve of one (config, type).</summary>
public sealed record ServiceCurve(double Rate, int BatchSize, IReadOnlyList<ServicePoint> Points)
{
    public static readonly ServiceCurve Unservable = new(0, 0, []);

    public ServiceEstimate At(double u)
    {
        if (Rate <= 0 || Points.Count == 0)
            return new ServiceEstimate(0, 0, double.PositiveInfinity, double.PositiveInfinity, double.PositiveInfinity);
        if (u >= 1) return new ServiceEstimate(Rate, BatchSize, double.PositiveInfinity, double.PositiveInfinity, double.PositiveInfinity);
        var p = Points;
        if (u <= p[0].U) return Make(p[0]);
        int i = 1;
        while (i < p.Count - 1 && p[i].U < u) i++;
        var (lo, hi) = (p[i - 1], p[i]);
        double f = (u - lo.U) / (hi.U - lo.U);
        // Past the last point the last segment extends (f > 1); latency never falls with load.
        return Make(new ServicePoint(u,
            Math.Max(lo.TtftP90, lo.TtftP90 + f * (hi.TtftP90 - lo.TtftP90)),
            Math.Max(lo.TpotP90, lo.TpotP90 + f * (hi.TpotP90 - lo.TpotP90)),
            Math.Max(lo.E2eMean, lo.E2eMean + f * (hi.E2eMean - lo.E2eMean))));
    }

    private ServiceEstimate Make(ServicePoint q) => new(Rate, BatchSize, q.TtftP90, q.TpotP90, q.E2eMean);
}
