using OServe.Engine.Demo;
using Xunit;

namespace OServe.Engine.Tests.Demo;

public sealed class RequestAccountingTests
{
    [Fact]
    public void Every_request_completed_and_finished_once_is_ok()
    {
        var books = new RequestAccounting();
        foreach (var id in new[] { "a", "b", "c" }) books.Finished(id);
        var r = books.Check(sent: 3, clientCompleted: 3);
        Assert.True(r.Ok, r.Describe());
        Assert.Equal("3/3 completed, each finished once by the server", r.Describe());
    }

    [Fact]
    public void A_request_the_client_never_got_back_is_lost()
    {
        var books = new RequestAccounting();
        books.Finished("a");
        books.Finished("b");
        var r = books.Check(sent: 3, clientCompleted: 2);
        Assert.False(r.Ok);
        Assert.Equal(1, r.Lost);
        Assert.Contains("(1 LOST)", r.Describe());
    }

    [Fact]
    public void A_request_the_server_finished_twice_is_duplicated()
    {
        var books = new RequestAccounting();
        books.Finished("a");
        books.Finished("b");
        books.Finished("b");
        var r = books.Check(sent: 2, clientCompleted: 2);
        Assert.False(r.Ok);
        Assert.Equal(1, r.Duplicated);
        Assert.Contains("1 DUPLICATED", r.Describe());
    }

    [Fact]
    public async Task Waiting_for_the_servers_books_returns_once_they_are_complete()
    {
        var books = new RequestAccounting();
        var wait = books.WaitForAsync(2, TimeSpan.FromSeconds(30), CancellationToken.None);
        books.Finished("a");
        books.Finished("b");
        await wait.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(books.Check(2, 2).Ok);
    }
}
