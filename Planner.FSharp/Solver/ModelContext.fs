namespace OServe.Planner.Solver

open Google.OrTools.Sat
open OServe.Planner.CostModel

/// What a researcher's constraint sees: the CP-SAT model, the integer problem data and the named
/// variables. X[c] counts replicas of candidate c (which lives in node group Candidates[c].Group);
/// R[c][j] is the rate (in Problem.RateUnit) of type j routed to candidate c, None where c may
/// not serve j. Add constraints with Model.AddLinearConstraint(expr, lb, ub) or Model.Add(...).
type ModelContext =
    { Model: CpModel
      Problem: ScaledProblem
      Cluster: ClusterSpec
      X: IntVar[]
      R: IntVar option[][] }

    member ctx.Candidates = ctx.Problem.Candidates

    /// The node group that holds node `nodeIndex` (an index into Cluster.Nodes).
    member ctx.GroupOfNode(nodeIndex: int) =
        ctx.Problem.Groups |> Array.find (fun g -> Array.contains nodeIndex g.Nodes)

    /// Candidates whose replicas would sit in the group holding `nodeIndex`.
    member ctx.CandidatesOnNode(nodeIndex: int) =
        let g = ctx.GroupOfNode nodeIndex
        ctx.Problem.Candidates |> Array.filter (fun c -> c.Group = g.Index)

    /// sum_c coefficient(c) * X[c] as a CP-SAT expression.
    member ctx.SumX(coefficient: Candidate -> int64) : LinearExpr =
        let b = LinearExpr.NewBuilder()
        for c in ctx.Problem.Candidates do
            let k = coefficient c
            if k <> 0L then b.AddTerm(ctx.X[c.Index], k) |> ignore
        b

/// A constraint a researcher adds to the planner: a name (for messages), the nodes it addresses one
/// by one (kept out of node pooling so "this node" still means one node), and the function that adds
/// it to the model; an Error explains why it cannot apply (an unknown node, say).
type PlannerConstraint =
    { Name: string
      IsolatedNodes: int list
      Apply: ModelContext -> Result<unit, string> }
