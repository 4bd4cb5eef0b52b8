using System.Buffers;

namespace OServe.Engine.Benchmarking;

/// <summary>
/// Reads a text/event-stream body line by line into one pooled buffer, without a string per line.
/// <see cref="Line"/> is valid until the next call (it points into the buffer).
/// </summary>
public sealed class SseLineReader(Stream stream, int initialSize = 8192) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
    private int _start;
    private int _end;

    public ReadOnlyMemory<byte> Line { get; private set; }

    /// <summary>Next line without its "\n" or "\r\n"; false at the end of the stream.</summary>
    public async ValueTask<bool> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var length = newline > 0 && _buffer[_start + newline - 1] == '\r' ? newline - 1 : newline;
                Line = _buffer.AsMemory(_start, length);
                _start += newline + 1;
                return true;
            }
            MakeRoom();
            var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                if (_start == _end) return false;
                Line = _buffer.AsMemory(_start, _end - _start); // a last line without a newline
                _start = _end;
                return true;
            }
            _end += read;
        }
    }

    /// <summary>Moves the partial line to the front, or doubles the buffer when the partial line fills it.</summary>
    private void MakeRoom()
    {
        if (_end < _buffer.Length) return;
        var pending = _end - _start;
        var target = _buffer;
        if (_start == 0) target = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
        Buffer.BlockCopy(_buffer, _start, target, 0, pending);
        if (!ReferenceEquals(target, _buffer))
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = target;
        }
        _start = 0;
        _end = pending;
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
