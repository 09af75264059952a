using System.Threading.Channels;

namespace ClippyBot.Email;

/// <summary>
/// Where request handlers drop mail. Delivery happens in the background (<see cref="EmailDeliveryService"/>), so a page
/// answers in the same time whether or not a message was sent (no account-existence oracle through timing) and an SMTP
/// outage delays mail instead of failing the request. Messages live in memory only, bounded (new ones are refused when
/// full); mail that must survive a crash or a flood goes through <see cref="DurableEmailOutbox{TContext}"/> instead.
/// </summary>
public sealed class EmailOutbox
{
    private readonly Channel<EmailMessage> _queue = Channel.CreateBounded<EmailMessage>(new BoundedChannelOptions(10_000)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = false,
    });

    /// <summary>False when the queue is full (thousands waiting: the mail server has been down for a while).</summary>
    public bool TryEnqueue(EmailMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return _queue.Writer.TryWrite(message);
    }

    internal ChannelReader<EmailMessage> Reader => _queue.Reader;
}
