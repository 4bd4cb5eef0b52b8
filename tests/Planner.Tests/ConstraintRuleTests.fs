module OServe.Planner.Tests.ConstraintRuleTests

open System.Collections.Generic
open Expecto
open OServe.Contracts
open OServe.Planner.Solver
open OServe.Planner.Planning
open PlanningTests

let private pin devices =
    ConstraintSpec(Kind = ConstraintKind.Pin, Devices = (devices :> IReadOnlyList<string>), Tp = System.Nullable(List.length devices), Id = "tenant")

/// The worked example of README-constraints.md (scenarios/constraints/paper-4x8-h100-example.yaml).
let private example () =
    [| pin [ "node0/0"; "node0/1"; "node0/2"; "node0/3" ]
       ConstraintSpec(Kind = ConstraintKind.KeepFree, Node = "node3", Gpus = System.Nullable 4)
       ConstraintSpec(Kind = ConstraintKind.MaxTp, Value = System.Nullable 4)
       ConstraintSpec(Kind = ConstraintKind.MaxReplicas, Tp = System.Nullable 2, Pp = System.Nullable 1, Count = System.Nullable 2)
       ConstraintSpec(Kind = ConstraintKind.NoCrossNodePp) |] :> IReadOnlyList<ConstraintSpec>

let private planWith (kind: PlannerKind) (constraints: IReadOnlyList<ConstraintSpec>) =
    let req = PlanRequest(paperCluster (), llama70b (), convTypes 20.0, ConstraintSpecs = constraints)
    req.Options <- PlannerOptions(Kind = kind)
    planOk req

[<Tests>]
let tests =
    testList "Constraint rules" [
        for kind in [ PlannerKind.Cpsat; PlannerKind.Static; PlannerKind.PaperHeuristic ] do
            test (sprintf "the %A planner keeps every built-in constraint of the worked example" kind) {
                let cluster = paperCluster ()
                let o = planWith kind (example ())
                validate o.Plan cluster (llama70b ())
                Expect.isEmpty (PlanConstraints.Violations(o.Plan, example (), cluster)) "no constraint broken"
                let tenant = o.Plan.Replicas |> Seq.find (fun r -> r.Id = "tenant")
                Expect.sequenceEqual tenant.Devices [ "node0/0"; "node0/1"; "node0/2"; "node0/3" ] "pinned to its devices"
                Expect.isGreaterThan (nonNull o.Plan.Predicted).ServedRps 0.0 "serves"
            }
        test "at most N replicas of a shape holds where the optimum wants more" {
            let free = planWith PlannerKind.Cpsat [||]
            let shape (r: ReplicaSpec) = r.Tp, r.Pp
            let most = free.Plan.Replicas |> Seq.countBy shape |> Seq.maxBy snd
            let (tp, pp), n = most
            let capped = ConstraintSpec(Kind = ConstraintKind.MaxReplicas, Tp = System.Nullable tp, Pp = System.Nullable pp, Count = System.Nullable(n - 1))
            let o = planWith PlannerKind.Cpsat [| capped |]
            Expect.isLessThanOrEqual (o.Plan.Replicas |> Seq.filter (fun r -> shape r = (tp, pp)) |> Seq.length) (n - 1) "capped"
        }
        test "a whole node kept free and a pin on it cannot both hold: the constraints are named" {
            let both = [| ConstraintSpec(Kind = ConstraintKind.KeepFree, Node = "node0"); pin [ "node0/0"; "node0/1"; "node0/2"; "node0/3" ] |]
            match Planning.plan (PlanRequest(paperCluster (), llama70b (), convTypes 20.0, ConstraintSpecs = both)) with
            | Ok _ -> failtest "cannot hold"
            | Error es ->
                let text = es |> List.map string |> String.concat "\n"
                Expect.stringContains text "keep_free node0" "names keep_free"
                Expect.stringContains text "pin" "names the pin"
        }
        test "a current plan that breaks a new constraint is left, whatever the switch costs" {
            let cluster, model = paperCluster (), llama70b ()
            let first = planOk (PlanRequest(cluster, model, convTypes 20.0))
            let tp = first.Plan.Replicas |> Seq.map (fun r -> r.Tp) |> Seq.max
            let rule = [| ConstraintSpec(Kind = ConstraintKind.MaxTp, Value = System.Nullable(max 1 (tp / 2))) |]
            let next = planOk (PlanRequest(cluster, model, convTypes 20.0, Current = first.Plan, ConstraintSpecs = rule))
            Expect.isEmpty (PlanConstraints.Violations(next.Plan, rule, cluster)) "kept"
            Expect.stringContains next.SwitchReason "breaks a constraint" "says why"
        }
    ]
