module OServe.Planner.Tests.CpSatSmokeTests

open Expecto
open Google.OrTools.Sat
open OServe.Planner.Solver

[<Tests>]
let tests =
    testList "CpSatSmoke" [
        test "a tiny CP-SAT model solves to its known optimum" {
            let status, objective, x, y = CpSatSmoke.solveTiny ()
            Expect.equal status CpSolverStatus.Optimal "status"
            Expect.equal objective 7.0 "objective"
            Expect.equal (x, y) (1L, 3L) "solution"
        }
    ]
