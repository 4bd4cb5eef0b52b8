using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

public sealed class ServingOptionsTests
{
    [Theory]
    [InlineData("example.com", 8000, null, null, 429, "host: must be an IP address or 'localhost', got 'example.com'")]
    [InlineData("127.0.0.1", 70000, null, null, 429, "port: must be in 0..65535, got 70000")]
    [InlineData("127.0.0.1", 8000, "", null, 429, "api-key: must not be empty when given")]
    [InlineData("127.0.0.1", 8000, null, 0, 429, "max-concurrent-requests: must be at least 1, got 0")]
    [InlineData("127.0.0.1", 8000, null, null, 500, "reject-status-code: must be 429 or 503, got 500")]
    public void Bad_options_are_refused_naming_the_option(string host, int port, string? apiKey, int? maxConcurrent, int rejectStatus, string message)
    {
        var options = new ServeOptions { Host = host, Port = port, ApiKey = apiKey, MaxConcurrentRequests = maxConcurrent, RejectStatusCode = rejectStatus };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    [InlineData("localhost")]
    public void Loopback_hosts_are_accepted(string host) =>
        Assert.Null(Record.Exception(new ServeOptions { Host = host }.Validate));
}
