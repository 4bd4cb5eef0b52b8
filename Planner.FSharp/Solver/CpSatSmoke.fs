namespace OServe.Planner.Solver

open Google.OrTools.Sat

/// Smallest possible end-to-end use of CP-SAT from F#: proves the native solver loads and solves.
[<RequireQualifiedAccess>]
module CpSatSmoke =
    /// maximize x + 2y subject to x + y <= 4, x, y in [0, 3]; optimum 7 at (1, 3).
    let solveTiny () =
        let model = CpModel()
        let x = model.NewIntVar(0L, 3L, "x")
        let y = model.NewIntVar(0L, 3L, "y")
        let vars : LinearExpr[] = [| x; y |]
        model.AddLinearConstraint(LinearExpr.Sum(vars), 0L, 4L) |> ignore
        model.Maximize(LinearExpr.WeightedSum(vars, [| 1L; 2L |]))
        let solver = new CpSolver()
        let status = solver.Solve(model)
        status, solver.ObjectiveValue, solver.Value(x), solver.Value(y)
