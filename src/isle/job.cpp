// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include <QIsle/qislejob.h>

#include "isle/futurestore_p.h"

#include <QtCore/QFutureWatcher>
#include <QtCore/QMutexLocker>

#include <optional>

// The job's state is a copy taken in the job's thread from the watcher's
// (queued) notifications: reading a property never touches the future.
class QIsleJobPrivate
{
public:
    explicit QIsleJobPrivate(QIsleJob *q) : q(q) {}

    void connectWatcher();
    void resultsReady();
    void finish();
    void setSuspended(bool on);
    void setProgress(int value);
    void setProgressMaximum(int maximum);
    void setProgressText(const QString &text);

    QIsleJob *q;
    QFuture<QVariant> future;
    QFutureWatcher<QVariant> watcher;
    bool running = false; // true from construction until finish(), so never "neither running nor finished"
    bool finished = false;
    bool suspended = false;
    bool canceled = false;
    int progress = 0;
    int progressMaximum = 0;
    QString progressText;
    QVariant result;
    QVariantList emitted; // emitted[i] is result i + 1, received in order
    std::optional<QIsleError> error;
};

void QIsleJobPrivate::connectWatcher()
{
    using W = QFutureWatcher<QVariant>;
    QObject::connect(&watcher, &W::resultsReadyAt, q, [this] { resultsReady(); });
    QObject::connect(&watcher, &W::progressValueChanged, q, [this](int v) { setProgress(v); });
    QObject::connect(&watcher, &W::progressRangeChanged, q, [this](int, int max) { setProgressMaximum(max); });
    QObject::connect(&watcher, &W::progressTextChanged, q, [this](const QString &t) { setProgressText(t); });
    QObject::connect(&watcher, &W::suspending, q, [this] { setSuspended(true); });
    QObject::connect(&watcher, &W::suspended, q, [this] { setSuspended(true); });
    QObject::connect(&watcher, &W::resumed, q, [this] { setSuspended(false); });
    QObject::connect(&watcher, &W::finished, q, [this] { finish(); });
    watcher.setFuture(future); // replays what already happened, queued
}

void QIsleJobPrivate::resultsReady()
{
    // Qt 6.4 reports a result stored past a gap (emits wait for result 0)
    // with an empty range: walk the results instead of trusting it.
    QFutureInterface<QVariant> state(QFutureInterfaceBase::get(future));
    for (int index = int(emitted.size()) + 1; !future.isCanceled(); ++index) {
        std::optional<QVariant> value = FutureStore::resultAt(state, index);
        if (!value)
            return;
        emitted.append(*value);
        Q_EMIT q->resultEmitted(index, *value);
    }
}

void QIsleJobPrivate::finish()
{
    if (finished)
        return;
    finished = true;
    resultsReady(); // none may be left, but finished() must come last
    // Progress notifications are throttled by Qt: end on the exact values.
    if (future.progressMaximum() > 0 || future.progressValue() > 0) {
        setProgressMaximum(future.progressMaximum());
        setProgress(future.progressValue());
        if (!future.progressText().isNull())
            setProgressText(future.progressText());
    }

    // The error first: Qt 6.4 flags a future that failed as canceled too.
    try {
        future.waitForFinished(); // finished: rethrows a stored error, never blocks
    } catch (const QIsleError &e) {
        error = e;
    } catch (const std::exception &e) {
        error = QIsleError(QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    }
    if (!error) {
        // Qt 6.4: never read a result of a canceled future.
        if (future.isCanceled())
            canceled = true;
        else if (future.isResultReadyAt(0))
            result = future.resultAt(0);
    }

    if (result.isValid())
        Q_EMIT q->resultChanged();
    if (error)
        Q_EMIT q->errorChanged();
    if (canceled)
        Q_EMIT q->canceledChanged(true);
    setSuspended(false);
    running = false;
    Q_EMIT q->runningChanged(false);
    if (error)
        Q_EMIT q->failed();
    Q_EMIT q->finished();
}

void QIsleJobPrivate::setSuspended(bool on)
{
    if (on && finished)
        return;
    if (suspended == on)
        return;
    suspended = on;
    Q_EMIT q->suspendedChanged(on);
}

void QIsleJobPrivate::setProgress(int value)
{
    if (progress == value)
        return;
    progress = value;
    Q_EMIT q->progressChanged(value);
}

void QIsleJobPrivate::setProgressMaximum(int maximum)
{
    if (progressMaximum == maximum)
        return;
    progressMaximum = maximum;
    Q_EMIT q->progressMaximumChanged(maximum);
}

void QIsleJobPrivate::setProgressText(const QString &text)
{
    if (progressText == text)
        return;
    progressText = text;
    Q_EMIT q->progressTextChanged(text);
}

QIsleJob::QIsleJob(QObject *parent) : QObject(parent), d(std::make_unique<QIsleJobPrivate>(this))
{
}

QIsleJob::QIsleJob(QFuture<QVariant> future, QObject *parent)
    : QObject(parent), d(std::make_unique<QIsleJobPrivate>(this))
{
    d->future = std::move(future);
    d->running = true;
    d->connectWatcher();
}

QIsleJob::~QIsleJob() = default;

QFuture<QVariant> QIsleJob::future() const { return d->future; }
bool QIsleJob::isRunning() const { return d->running; }
bool QIsleJob::isFinished() const { return d->finished; }
bool QIsleJob::isSuspended() const { return d->suspended; }
int QIsleJob::progress() const { return d->progress; }
int QIsleJob::progressMaximum() const { return d->progressMaximum; }
QString QIsleJob::progressText() const { return d->progressText; }
QVariant QIsleJob::result() const { return d->result; }
QVariantList QIsleJob::emittedResults() const { return d->emitted; }
bool QIsleJob::isCanceled() const { return d->canceled; }
std::optional<QIsleError> QIsleJob::error() const { return d->error; }
QString QIsleJob::errorString() const { return d->error ? d->error->message() : QString(); }
int QIsleJob::errorLine() const { return d->error ? d->error->line() : -1; }
QString QIsleJob::errorKind() const { return d->error ? QIsleError::kindName(d->error->kind()) : QString(); }

void QIsleJob::cancel()
{
    if (!d->running)
        return;
    d->future.cancel();
    d->setSuspended(false); // cancel() also ends a suspension
}

void QIsleJob::suspend()
{
    if (!d->running)
        return;
    d->future.suspend();
    d->setSuspended(true); // at once, for the button that asked
}

void QIsleJob::resume()
{
    if (!d->running)
        return;
    d->future.resume();
    d->setSuspended(false);
}
