using System.Collections.Concurrent;

namespace OServe.Models.Parallelism;

/// <summary>
/// Long-lived dedicated threads for the work that runs on a replica's devices: an engine's step
/// loop and a tensor-parallel shard's worker. A thread whose work returns waits here for the next
/// one instead of exiting, so the replica a live switch builds runs on a thread that has served
/// before.
/// </summary>
/// <remarks>
/// Why not a new thread per replica: glibc gives a new thread its own malloc arena, empty, and
/// libtorch's CPU tensors come from malloc. A new replica's first long prompt then faulted in its
/// whole working set afresh: 12-30 thousand page faults and 150-500 ms more than the same prompt
/// a moment later (1024 tokens, built-in demo model, this project's 2-core VM; a probe switching
/// live between 1 x tp2 and 2 x tp1 and reading the process's page faults). An arena stays with its thread, and keeps its freed memory
/// (<c>NativeMemoryTuning</c> raises the trim threshold), so a reused thread starts warm. On CUDA
/// the same threads only save their creation.
/// A thread is handed back with the process default of torch's intra-op threads, whatever its
/// last work pinned (<see cref="IntraOpThreads"/>). At most <see cref="MaxIdle"/> threads wait;
/// beyond that a finished thread exits.
/// </remarks>
public static class ComputeThreads
{
    private static readonly ConcurrentBag<Worker> Idle = [];
    private static int created;

    /// <summary>Threads kept waiting for work at most (the rest exit when their work returns).</summary>
    public static int MaxIdle { get; } = 2 * Environment.ProcessorCount + 2;

    /// <summary>Threads created so far (a reused thread is not counted again).</summary>
    public static int Created => Volatile.Read(ref created);

    /// <summary>Threads waiting for work now.</summary>
    public static int IdleCount => Idle.Count;

    /// <summary>
    /// Runs <paramref name="work"/> on a dedicated background thread: a waiting one when there is
    /// one, else a new one. Returns at once. An exception that escapes <paramref name="work"/> ends
    /// the process, as on a thread of its own.
    /// </summary>
    public static void Start(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (!Idle.TryTake(out var worker))
        {
            worker = new Worker(Interlocked.Increment(ref created));
        }
        worker.Run(work);
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim ready = new(0);
        private Action? work;

        public Worker(int number)
        {
            new Thread(Loop) { IsBackground = true, Name = $"oserve-compute-{number}" }.Start();
        }

        public void Run(Action item)
        {
            work = item;
            ready.Release();
        }

        private void Loop()
        {
            while (true)
            {
                ready.Wait();
                var item = work!;
                work = null;
                item();
                if (IntraOpThreads.PinnedCount != 0) IntraOpThreads.UnpinCurrentThread();
                if (Idle.Count >= MaxIdle) return;
                Idle.Add(this);
            }
        }
    }
}
