using System.Text;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;

namespace OServe.Engine.Distributed;

/// <summary>
/// The front end's plan endpoints over the cluster: GET /v1/plan (the plan in force, YAML), PUT
/// /v1/plan (a switch across workers, make-before-break on the controller; 400 listing every problem
/// of a bad plan, 500 after a rollback, else 200 with the report), GET /v1/cluster (JSON: epoch, live
/// workers, missing replicas, where each replica runs and what it holds, resumed streams, requests a
/// switch moved).
/// </summary>
public static class ClusterPlanEndpoints
{
    private const string BodyName = "request-body";

    /// <param name="validate">The plan checks of this deployment (cluster, model, one node per replica).</param>
    public static void Map(IEndpointRouteBuilder app, ClusterRuntime runtime, Func<Plan, SourceMap, IReadOnlyList<ContractError>> validate)
    {
        app.MapGet("/v1/plan", () => runtime.Current is { } plan
            ? TypedResults.Text(ContractYaml.Write(plan), PlanEndpoints.YamlContentType)
            : Error(StatusCodes.Status503ServiceUnavailable, "no replica of the cluster's plan is up yet", "server_error", "no_plan"));
        app.MapGet("/v1/cluster", () => TypedResults.Json(Describe(runtime), PlanEndpoints.ReportJson));
        app.MapPut("/v1/plan", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            string body;
            using (var reader = new StreamReader(request.Body, Encoding.UTF8))
                body = await reader.ReadToEndAsync(cancellationToken);
            if (string.IsNullOrWhiteSpace(body))
                return Problems([new ContractError(BodyName, 0, "", "the body is empty: send a plan as YAML")]);
            Sourced<Plan> parsed;
            try { parsed = ContractYaml.ParsePlan(body, BodyName); }
            catch (ContractException e) { return Problems(e.Errors); }
            var errors = validate(parsed.Value, parsed.Lines);
            if (errors.Count > 0)
                return Problems(errors);
            var report = await runtime.ApplyAsync(parsed.Value); // a client leaving must not cut a switch short
            if (!report.Applied)
                return Error(StatusCodes.Status500InternalServerError,
                    $"the switch to plan v{parsed.Value.Version} failed and was rolled back; epoch {report.Epoch} is still serving: {report.Error}", "server_error", "switch_failed");
            return TypedResults.Json(report, PlanEndpoints.ReportJson);
        });
    }

    public static object Describe(ClusterRuntime runtime)
    {
        var view = runtime.View;
        var deployment = runtime.Deployment;
        return new
        {
            view.Epoch,
            view.LiveNodes,
            view.MissingReplicas,
            view.LastEvent,
            view.Replan,
            view.Loop,
            view.LoopSwitch,
            view.Observed,
            Replicas = deployment?.Replicas.Select(r => new { r.Id, r.Node, r.Key, r.Outstanding, r.IsSuspect }).ToArray() ?? [],
            Workers = runtime.Workers,
            StreamBreaks = runtime.Counters.NumBreaks,
            RequestsResumed = runtime.Counters.NumResumed,
            runtime.Counters.MaxResumeSeconds,
            RequestsMoved = runtime.Counters.NumMoved,
            RequestsMovedWithKv = runtime.Counters.NumMovedWithKv,
            runtime.Counters.MaxMoveSeconds,
        };
    }

    private static IResult Problems(IReadOnlyList<ContractError> errors) =>
        Error(StatusCodes.Status400BadRequest, "plan rejected, the current plan keeps running:\n" + string.Join("\n", errors), "invalid_request_error", "invalid_plan");

    private static IResult Error(int status, string message, string type, string code) =>
        new OpenAIErrorResult(status, new ErrorResponse(new ErrorDetail(message, type, "plan", code)));
}
