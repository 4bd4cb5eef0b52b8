using System.Diagnostics;
using System.Globalization;
using OServe.Contracts;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;

namespace OServe.Engine.Simulation;

/// <summary>What plan verification saw and chose in one window.</summary>
public sealed record WindowChoice(int Window, string Chosen, IReadOnlyList<CandidateScore> Scores, double Seconds);

/// <summary>
/// OServe's schedule with plan verification: in each window the planner proposes several plans
/// (the CP-SAT optimum, CP-SAT with capped tensor parallelism or a lower target utilization, every
/// homogeneous shape, and the plan now running), and the one that does best in the simulator on a
/// synthetic workload drawn from the forecast is deployed. The CP-SAT objective is an analytic
/// proxy (mean latency per type on pure streams); the simulator sees what it misses: tails, long
/// prefills stalling other types on a shared replica, the capacity a switch takes away.
/// The synthetic workload uses only the past (<see cref="ForecastWorkload"/>): forecast rates and
/// lengths of requests that arrived before the window. The trace's future is never read here.
/// </summary>
public static class VerifiedScheduler
{
    /// <returns>The plans, with what verification saw and chose in each window (<see cref="SystemPlans.Choices"/>).</returns>
    public static SystemPlans PlanSchedule(ScenarioWorkload w, ServingSystem system, CostCoefficients k,
        IServiceModel? service, VerificationOptions? options = null, int numWorkers = 1)
    {
        options ??= new VerificationOptions();
        bool reload = system == ServingSystem.Reload;
        int numTypes = w.Types.Length;
        double windowS = w.Scenario.Workload.WindowS;
        double last = w.Requests.Length > 0 ? w.Requests[^1].ArrivalS : 0;
        // As the planner's schedule: one plan per full window; the last partial window keeps the last plan.
        int numWindows = Math.Max(1, (int)Math.Floor(last / windowS));
        var replicaModels = new CostModelReplicas(w.Cluster, w.Model, k);
        var switching = new SwitchCosts(w.Cluster, w.Model.KvBytesPerToken, k.LinkEfficiency);
        var plans = new List<Plan>();
        var choices = new List<WindowChoice>();
        Plan? current = null;
        int numSwitches = 0;
        double total = 0, max = 0;
        for (int win = 0; win < numWindows; win++)
        {
            var clock = Stopwatch.StartNew();
            double start = win * windowS;
            var rates = ForecastWorkload.Rates(w.Requests, numTypes, windowS, win);
            var specs = w.Types.Select((t, j) => new RequestTypeSpec
            {
                Name = $"t{t.Id}",
                InputTokens = Math.Round(t.MeanInputTokens, 1),
                OutputTokens = Math.Round(t.MeanOutputTokens, 1),
                RateRps = Math.Round(rates[j], 6),
            }).ToList();
            var candidates = Candidates(w, k, service, options, numWorkers, reload, current, specs, start, windowS);
            double switchAt = current is null ? 0 : options.WarmupS;
            // Arrivals before `start` only: the verification must not see the window it plans for. (Window 0's
            // rates are its observed ones, the cold-start convention of every planner's schedule here; its
            // synthetic requests are Poisson draws, since there is no past to replay.)
            SimRequest[] Draw(IReadOnlyList<double> atRates, int seed) =>
                ForecastWorkload.Draw(w.Requests, start, options.LookbackS, atRates, w.Types, switchAt + options.HorizonS, w.Model.MaxContext, seed);
            var workloads = new List<IReadOnlyList<SimRequest>> { Draw(rates, options.Seed + win) };
            if (options.StressAtPeak && win > 0)
            {
                var peak = ForecastWorkload.PeakRates(w.Requests, numTypes, windowS, win, rates, options.PeakWindows);
                if (peak.Where((p, j) => p > rates[j] * 1.05).Any())
                    workloads.Add(Draw(peak, options.Seed + 7919 + win));
            }
            var scores = candidates.Select(c => PlanVerifier.Score(c, current, workloads, switchAt, replicaModels.For, switching, k.DrainMaxRemainingTokens, w.Scenario.Slo)).ToList();
            int pick = PlanVerifier.Choose(scores, options);
            var chosen = candidates[pick];
            if (current is not null && !chosen.IsKeep && chosen.Plan.Switch?.Steps.Any(s => s.Kind == SwitchStepKind.Start) == true) numSwitches++;
            plans.Add(chosen.Plan);
            current = chosen.Plan;
            double seconds = clock.Elapsed.TotalSeconds;
            total += seconds;
            max = Math.Max(max, seconds);
            choices.Add(new WindowChoice(win, chosen.Label, scores, seconds));
        }
        return new SystemPlans(system, plans, total, max, numSwitches, SystemRunner.Name(system), choices);
    }

    private static List<PlanCandidate> Candidates(ScenarioWorkload w, CostCoefficients k, IServiceModel? service, VerificationOptions options, int numWorkers,
        bool reload, Plan? current, List<RequestTypeSpec> specs, double start, double windowS)
    {
        int version = (current?.Version ?? 0) + 1;
        var window = new PlanWindow { StartS = start, LengthS = windowS };
        var list = new List<PlanCandidate>();
        if (current is not null)
            list.Add(new PlanCandidate("keep", PlannerAdapter.WithSwitch(w.Cluster, w.Model, k, current, current, reload)
                with { Version = version, Window = window, RequestTypes = specs }, IsKeep: true));

        var baseOptions = w.Scenario.Planner with { Kind = PlannerKind.Cpsat, Switching = reload ? SwitchMode.Reload : SwitchMode.Hot };
        var variants = new List<(string Label, OServe.Contracts.PlannerOptions Options)> { ("cpsat", baseOptions) };
        foreach (int tp in options.MaxTpVariants)
            if (tp < (baseOptions.MaxTp ?? int.MaxValue)) variants.Add(($"cpsat-maxtp{tp}", baseOptions with { MaxTp = tp }));
        foreach (double rho in options.RhoVariants)
            if (rho != baseOptions.Rho) variants.Add((string.Create(CultureInfo.InvariantCulture, $"cpsat-rho{rho:0.##}"), baseOptions with { Rho = rho }));
        var errors = new List<string>();
        foreach (var (label, opts) in variants)
        {
            var request = new PlanRequest(w.Cluster, w.Model, specs)
            {
                Slo = w.Scenario.Slo,
                Options = opts,
                Coefficients = k,
                ServiceModel = service,
                NumWorkers = numWorkers,
                Current = current,
                WindowStartS = start,
                WindowS = windowS,
                AlwaysSwitch = true,
                ConstraintSpecs = w.Scenario.Constraints,
            };
            var outcome = Planning.plan(request);
            if (outcome.IsOk)
            {
                var plan = outcome.ResultValue.Plan with { Version = version };
                list.Add(new PlanCandidate(label, plan));
                if (options.PooledVariants) list.Add(new PlanCandidate(label + "-pooled", Pooled(plan)));
            }
            else errors.Add($"{label}: {string.Join("; ", outcome.ErrorValue.Select(e => e.Message))}");
        }
        if (options.IncludeHomogeneous)
            foreach (var h in SystemRunner.HomogeneousCandidates(w, k))
            {
                var plan = PlanConstraints.WithPinIds(Renumbered(h, current), w.Scenario.Constraints) with { Version = version, Window = window, RequestTypes = specs };
                if (current is not null) plan = PlannerAdapter.WithSwitch(w.Cluster, w.Model, k, current, plan, reload);
                list.Add(new PlanCandidate(h.Planner, plan));
            }
        if (list.Count == 0)
            throw new PlanningException($"window at {start} s: no candidate plan ({string.Join(" | ", errors)})");
        // Every candidate keeps the scenario's constraints: the CP-SAT ones by construction, the
        // homogeneous ones by SystemRunner.Homogeneous; a kept plan that breaks one (constraints
        // the running plan predates) is no candidate.
        list.RemoveAll(c => PlanConstraints.Violations(c.Plan, w.Scenario.Constraints, w.Cluster).Count > 0);
        // Equal plans are simulated once; the first (the kept plan before any new one) stays.
        // A plan without replicas (the solve for a window forecast at zero demand) cannot take the requests a forecast misses.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var distinct = list.Where(c => c.Plan.Replicas.Count > 0 && seen.Add(Signature(c.Plan))).ToList();
        return distinct.Count > 0 ? distinct : throw new PlanningException($"window at {start} s: every candidate plan is empty");
    }

    /// <summary>
    /// The same replicas with every type routed to every replica in proportion to its GPUs: CP-SAT
    /// splits types across replicas by their mean service rates, which gives up the statistical
    /// multiplexing of one shared queue; verification tells which matters more for this workload.
    /// </summary>
    internal static Plan Pooled(Plan plan)
    {
        var weights = plan.Replicas.ToDictionary(r => r.Id, r => (double)r.Devices.Count, StringComparer.Ordinal);
        return plan with { Routing = plan.RequestTypes.Select(t => new RoutingEntry { Type = t.Name, Weights = weights }).ToList() };
    }

    /// <summary>
    /// A homogeneous plan whose replicas reuse the ids of current replicas on the same devices with
    /// the same shape (so the switch keeps them), and take unused ids otherwise.
    /// </summary>
    internal static Plan Renumbered(Plan plan, Plan? current)
    {
        var currentIds = current?.Replicas.Select(r => r.Id).ToHashSet(StringComparer.Ordinal) ?? [];
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in plan.Replicas)
        {
            var same = current?.Replicas.FirstOrDefault(c => c.Tp == r.Tp && c.Pp == r.Pp && c.Devices.SequenceEqual(r.Devices));
            if (same is not null) { map[r.Id] = same.Id; used.Add(same.Id); }
        }
        int next = 0;
        foreach (var r in plan.Replicas)
        {
            if (map.ContainsKey(r.Id)) continue;
            string id;
            do id = $"h{next++}"; while (currentIds.Contains(id) || used.Contains(id));
            used.Add(id);
            map[r.Id] = id;
        }
        return plan with
        {
            Replicas = plan.Replicas.Select(r => r with { Id = map[r.Id] }).ToList(),
            Routing = plan.Routing.Select(e => e with { Weights = e.Weights.ToDictionary(kv => map[kv.Key], kv => kv.Value) }).ToList(),
        };
    }

    /// <summary>Replica shapes and devices with their normalized routing weights: equal signatures serve alike.</summary>
    private static string Signature(Plan plan)
    {
        var replicas = plan.Replicas.OrderBy(r => r.Devices[0], StringComparer.Ordinal).ToList();
        var parts = replicas.Select(r =>
        {
            var weights = plan.Routing.Select(e =>
            {
                double sum = e.Weights.Values.Sum();
                return e.Weights.TryGetValue(r.Id, out var v) && sum > 0 ? (v / sum).ToString("F3", CultureInfo.InvariantCulture) : "0";
            });
            return $"{r.Tp}/{r.Pp}@{string.Join(",", r.Devices)}:{string.Join(",", weights)}";
        });
        return string.Join("|", parts);
    }
}
