using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// The dedicated thread of one shard of a replica on core-owning logical devices
/// (<see cref="PoolDevice.OwnsCore"/>): it runs that shard's part of each step with one intra-op
/// thread, so the shards of a stage compute at the same time, each on its own core. One work item
/// at a time: the replica's forward hands each worker its rank's work and waits for all of them
/// before the all-reduce. The thread serves this replica as long as it lives, then goes back to
/// <see cref="ComputeThreads"/> for the next replica.
/// </summary>
internal sealed class ShardWorker : IDisposable
{
    private readonly ManualResetEventSlim exited = new(false);
    private readonly SemaphoreSlim ready = new(0);
    private readonly ManualResetEventSlim done = new(false);
    private Func<Tensor>? work;
    private Tensor? result;
    private Exception? error;
    private volatile bool stopping;

    public ShardWorker()
    {
        ComputeThreads.Start(Loop);
    }

    /// <summary>Starts <paramref name="item"/> on the worker; <see cref="Wait"/> returns its result.</summary>
    public void Post(Func<Tensor> item)
    {
        ObjectDisposedException.ThrowIf(stopping, this);
        if (work is not null) throw new InvalidOperationException("a shard worker runs one item at a time");
        done.Reset();
        work = item;
        ready.Release();
    }

    /// <summary>The posted item's tensor, detached from any dispose scope (the caller attaches it to its own); rethrows its error.</summary>
    public Tensor Wait()
    {
        done.Wait();
        var (r, e) = (result, error);
        (result, error, work) = (null, null, null);
        if (e is not null) throw new AggregateException("a shard worker failed", e);
        return r!;
    }

    private void Loop()
    {
        try
        {
            Serve();
        }
        finally
        {
            exited.Set();
        }
    }

    private void Serve()
    {
        // One core per device: this thread and the ops it issues use one intra-op thread.
        IntraOpThreads.PinCurrentThread(1);
        while (true)
        {
            ready.Wait();
            if (stopping) return;
            try
            {
                // Grad mode and dispose scopes are per thread: set here, and the result leaves detached.
                using var noGrad = no_grad();
                using var scope = NewDisposeScope();
                result = work!().DetachFromDisposeScope();
            }
            catch (Exception e)
            {
                error = e;
            }
            done.Set();
        }
    }

    public void Dispose()
    {
        if (stopping) return;
        stopping = true;
        ready.Release();
        exited.Wait();
        exited.Dispose();
        ready.Dispose();
        done.Dispose();
    }
}
