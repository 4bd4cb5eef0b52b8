using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Orchestration;

namespace OServe.Engine.Control;

/// <summary>
/// The controller's view of the real engine: a <see cref="PlanRuntime"/> as an <see cref="IPlanTarget"/>.
/// A plan the runtime refuses (validation) or a switch it rolls back is reported as not applied,
/// with the runtime's reason; the old plan keeps serving in both cases.
/// </summary>
public sealed class PlanRuntimeTarget(PlanRuntime runtime) : IPlanTarget
{
    public Plan Current => runtime.Current;

    public async Task<PlanSwitchResult> ApplyAsync(Plan next, CancellationToken cancellationToken)
    {
        SwitchReport report;
        try
        {
            report = await runtime.ApplyAsync(next, cancellationToken);
        }
        catch (PlanRejectedException e)
        {
            return new PlanSwitchResult(false, 0, "refused by the runtime: " + string.Join("; ", e.Errors));
        }
        return new PlanSwitchResult(report.Outcome == SwitchOutcome.Applied, report.TotalSeconds, Describe(report));
    }

    /// <summary>One line of what the switch did: replicas kept/started/stopped, bytes moved, requests handed over.</summary>
    public static string Describe(SwitchReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        if (r.Outcome == SwitchOutcome.RolledBack)
            return string.Create(inv, $"rolled back after {r.TotalSeconds:F2} s, v{r.FromVersion} still serving: {r.Error}");
        var text = string.Create(inv, $"{r.NumKept} kept, {r.NumStarted} started (build {r.BuildSeconds:F2} s), {r.NumStopped} stopped (retire {r.RetireSeconds:F2} s)");
        if (r.NumStarted > 0)
            text += string.Create(inv, $"; weights {r.BytesFromPeers / 1e6:F1} MB from peers, {r.BytesFromStorage / 1e6:F1} MB from storage");
        if (r.NumRequestsMigrated + r.NumRequestsDrained > 0)
            text += string.Create(inv, $"; {r.NumRequestsMigrated} requests moved with {r.KvBytesMoved / 1e6:F2} MB of KV, {r.NumRequestsDrained} drained");
        return text;
    }
}
