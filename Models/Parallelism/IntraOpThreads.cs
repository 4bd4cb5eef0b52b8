using TorchSharp;

namespace OServe.Models.Parallelism;

/// <summary>
/// Per-thread control of libtorch's intra-op threads, so a thread can stand for one core.
/// </summary>
/// <remarks>
/// TorchSharp exposes only <c>torch.set_num_threads</c> (at::set_num_threads). Its effect on the
/// CPU build TorchSharp ships (GNU OpenMP, MKL) is per calling thread for the parts that decide
/// how many threads an op uses: omp_set_num_threads writes the calling thread's own OpenMP ICV
/// (libgomp gives every native thread its own implicit task), mkl_set_num_threads_local is
/// thread-local, and at::get_num_threads and at::parallel_for read that ICV. Its one process-wide
/// effect is the default a thread takes the first time it runs a torch op (at::init_num_threads
/// reads a global). <see cref="PinCurrentThread"/> therefore sets the count on the calling thread
/// and then puts the global default back from a short-lived helper thread, so threads that have
/// not run torch yet (the HTTP server's, the tests') keep the machine's default. A thread that
/// first touches torch in the instant between the two calls would take the pinned count; only
/// its speed would differ, never a result.
/// The project's own CPU kernels (CpuDecodeMatmul, CpuDecodeAttention) size their parallel loops
/// by torch.get_num_threads() on the calling thread, so they follow the pin too.
/// </remarks>
public static class IntraOpThreads
{
    private static readonly object Gate = new();

    [ThreadStatic]
    private static int pinned;

    /// <summary>The intra-op thread count this thread was pinned to; 0 when never pinned.</summary>
    public static int PinnedCount => pinned;

    /// <summary>Makes torch ops issued from this thread use <paramref name="threads"/> intra-op threads; other threads are unaffected.</summary>
    public static void PinCurrentThread(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (pinned == threads) return;
        lock (Gate)
        {
            int defaultForNewThreads = OnFreshThread(torch.get_num_threads);
            // A thread's first torch call takes the global default (at::init_num_threads, once per
            // thread), which would overwrite a count set before it: make that first call now.
            torch.get_num_threads();
            torch.set_num_threads(threads);
            OnFreshThread(() =>
            {
                torch.set_num_threads(defaultForNewThreads);
                return 0;
            });
        }
        pinned = threads;
    }

    /// <summary>Gives this thread the process default back (a pooled thread, <see cref="ComputeThreads"/>, before its next work).</summary>
    public static void UnpinCurrentThread()
    {
        if (pinned == 0) return;
        lock (Gate) // re-entered by DefaultForNewThreads; held so no pin runs between the read and the set
            torch.set_num_threads(DefaultForNewThreads()); // the global default stays what it was
        pinned = 0;
    }

    /// <summary>torch.get_num_threads() as a thread that never ran a torch op sees it: the process default.</summary>
    public static int DefaultForNewThreads()
    {
        lock (Gate) return OnFreshThread(torch.get_num_threads);
    }

    private static int OnFreshThread(Func<int> work)
    {
        int result = 0;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try { result = work(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "oserve-intra-op-threads" };
        thread.Start();
        thread.Join();
        if (error is not null) throw new InvalidOperationException("setting torch's intra-op threads failed: " + error.Message, error);
        return result;
    }
}
