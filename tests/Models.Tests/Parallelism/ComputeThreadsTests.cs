using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Parallelism;

/// <summary>
/// The pool of threads that engine loops and shard workers run on: a thread whose work returned
/// runs the next work (its allocator arena stays warm), and it comes back unpinned.
/// </summary>
public sealed class ComputeThreadsTests
{
    private static (int ThreadId, int Pinned, int TorchThreads) RunAndWait(Action? inside = null)
    {
        var done = new TaskCompletionSource<(int, int, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        ComputeThreads.Start(() =>
        {
            var seen = (Environment.CurrentManagedThreadId, IntraOpThreads.PinnedCount, get_num_threads());
            inside?.Invoke();
            done.SetResult(seen);
        });
        return done.Task.WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
    }

    [Fact]
    public void WorkAfterWorkRunsOnAThreadThatRanBefore()
    {
        // Other tests start engines meanwhile, so no count can be exact: the check is that the
        // threads this test saw are the pool's, and that a finished one came back to run again.
        var first = RunAndWait();
        SpinWait.SpinUntil(() => ComputeThreads.IdleCount > 0, TimeSpan.FromSeconds(10));
        var seen = new HashSet<int> { first.ThreadId };
        bool reused = false;
        for (int i = 0; i < 20 && !reused; i++)
        {
            var next = RunAndWait();
            reused = !seen.Add(next.ThreadId);
            SpinWait.SpinUntil(() => ComputeThreads.IdleCount > 0, TimeSpan.FromSeconds(10));
        }
        Assert.True(reused, $"20 works in a row ran on {seen.Count} different threads; none was reused");
        Assert.True(ComputeThreads.Created < 1000, "the pool made a thread per work");
    }

    [Fact]
    public void APinnedThreadComesBackWithTheProcessDefault()
    {
        int defaultThreads = IntraOpThreads.DefaultForNewThreads();
        Assert.True(defaultThreads >= 1);
        var pinnedHere = new HashSet<int>();
        for (int i = 0; i < ComputeThreads.MaxIdle + 2; i++)
            pinnedHere.Add(RunAndWait(() => IntraOpThreads.PinCurrentThread(1)).ThreadId);
        SpinWait.SpinUntil(() => ComputeThreads.IdleCount > 0, TimeSpan.FromSeconds(10));
        // Only threads this test pinned are checked: a fresh thread's first torch call can race a
        // pin made meanwhile by another test (the window IntraOpThreads' remarks describe).
        int checkedThreads = 0;
        for (int i = 0; i < 4 * ComputeThreads.MaxIdle && checkedThreads < 4; i++)
        {
            var seen = RunAndWait();
            if (!pinnedHere.Contains(seen.ThreadId)) continue;
            Assert.Equal(0, seen.Pinned);
            Assert.Equal(defaultThreads, seen.TorchThreads);
            checkedThreads++;
            SpinWait.SpinUntil(() => ComputeThreads.IdleCount > 0, TimeSpan.FromSeconds(10));
        }
        Assert.True(checkedThreads > 0, "no later work ran on a thread this test had pinned");
    }
}
