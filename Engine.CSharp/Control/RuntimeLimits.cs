using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using OServe.Planner.Solver;

namespace OServe.Engine.Control;

/// <summary>Planner constraints that keep plans to what the serving runtime can build.</summary>
public static class RuntimeLimits
{
    /// <summary>
    /// No replica with tensor or pipeline parallelism above <paramref name="maxDegree"/>: the plan
    /// runtime refuses such replicas (it builds tp=1, pp=1 only until sharded replicas are merged),
    /// so the planner must not count on them.
    /// </summary>
    public static PlannerConstraint MaxParallelism(int maxDegree)
    {
        if (maxDegree < 1) throw new ArgumentOutOfRangeException(nameof(maxDegree), maxDegree, "a parallel degree is at least 1");
        return new PlannerConstraint($"max-parallelism {maxDegree}", FSharpList<int>.Empty,
            FuncConvert.FromFunc((ModelContext ctx) =>
            {
                foreach (var c in ctx.Candidates)
                    if (c.Config.Tp > maxDegree || c.Config.Pp > maxDegree)
                        ctx.Model.AddLinearConstraint(ctx.X[c.Index], 0L, 0L);
                return FSharpResult<Unit, string>.NewOk(null!);
            }));
    }
}
