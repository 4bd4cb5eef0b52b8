using OServe.Engine.Serving.Hostile;
using Xunit;

namespace OServe.Engine.Tests.Hostile;

/// <summary>
/// Every hostile request (oversized, unauthenticated, invalid Unicode in each text field, broken
/// JSON, broken HTTP) gets its 4xx in OpenAI's error shape naming the field, never a 5xx, and the
/// server answers GET /health right after. `oserve bench-hostile` runs the same cases and counts.
/// </summary>
public sealed class HostileInputTests(HostileServerFixture server) : IClassFixture<HostileServerFixture>
{
    [Theory]
    [MemberData(nameof(HostileServerFixture.CaseNames), MemberType = typeof(HostileServerFixture))]
    public async Task Each_hostile_request_is_refused_in_openai_shape_and_the_server_survives(string name)
    {
        var result = await HostileRunner.RunAsync(server.BaseAddress, server.Cases[name], TimeSpan.FromSeconds(30));

        Assert.True(result.IsOk, $"{name}: {result.Problem}");
        Assert.InRange(result.Response.Status, 400, 499);
        Assert.True(result.IsAlive);
    }
}
