using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Serving;

namespace OServe.Engine.Orchestration;

/// <summary>
/// GET /v1/plan: the plan in force, as the YAML plan file format (text/yaml), so it can be saved,
/// edited and PUT back. PUT /v1/plan: applies a plan given as YAML (or JSON, which is YAML) in the
/// body. A plan that does not parse or validate is a 400 listing every problem as
/// "request-body:LINE field: message", and the current plan keeps running; a switch that fails
/// while building is a 500 after rolling back; success is 200 with the switch report (JSON).
/// </summary>
public static class PlanEndpoints
{
    public const string YamlContentType = "text/yaml; charset=utf-8";

    /// <summary>The switch report's JSON: the server's snake_case, enums as snake_case strings ("rolled_back", "copy_shard").</summary>
    public static JsonSerializerOptions ReportJson { get; } = new(ServingJson.Options)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
    private const string BodyName = "request-body";

    public static void Map(IEndpointRouteBuilder app, PlanRuntime runtime)
    {
        app.MapGet("/v1/plan", () => TypedResults.Text(ContractYaml.Write(runtime.Current), YamlContentType));
        app.MapPut("/v1/plan", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            string body;
            using (var reader = new StreamReader(request.Body, Encoding.UTF8))
                body = await reader.ReadToEndAsync(cancellationToken);
            if (string.IsNullOrWhiteSpace(body))
                return Problems([new ContractError(BodyName, 0, "", "the body is empty: send a plan as YAML")]);
            Sourced<Plan> parsed;
            try
            {
                parsed = ContractYaml.ParsePlan(body, BodyName);
            }
            catch (ContractException e)
            {
                return Problems(e.Errors);
            }
            var errors = runtime.Validate(parsed.Value, parsed.Lines);
            if (errors.Count > 0)
                return Problems(errors);
            try
            {
                var report = await runtime.ApplyAsync(parsed.Value, CancellationToken.None); // a client leaving must not cut a switch short
                if (report.Outcome == SwitchOutcome.RolledBack)
                    return new OpenAIErrorResult(StatusCodes.Status500InternalServerError, new ErrorResponse(new ErrorDetail(
                        $"the switch to plan v{parsed.Value.Version} failed and was rolled back; plan v{report.ToVersion} is still serving: {report.Error}",
                        "server_error", null, "switch_failed")));
                return TypedResults.Json(report, ReportJson);
            }
            catch (PlanRejectedException e)
            {
                return Problems(e.Errors);
            }
        });
    }

    private static IResult Problems(IReadOnlyList<ContractError> errors) =>
        new OpenAIErrorResult(StatusCodes.Status400BadRequest, new ErrorResponse(new ErrorDetail(
            "plan rejected, the current plan keeps running:\n" + string.Join("\n", errors), "invalid_request_error", "plan", "invalid_plan")));
}
