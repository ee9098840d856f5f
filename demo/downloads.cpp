// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "downloads.h"

#include <QtCore/QPromise>
#include <QtCore/QTimer>

#include <memory>
#include <stdexcept>

namespace {

QString kib(qint64 bytes)
{
    return QString::number(double(bytes) / 1024.0, 'f', 0) + QStringLiteral(" KB");
}

} // namespace

Downloads::Downloads(QObject *parent) : QObject(parent) {}

// The timers are children: destroying Downloads stops every tick, and a
// promise destroyed unfinished cancels and finishes its future.
Downloads::~Downloads() = default;

qint64 Downloads::sizeFor(const QString &url)
{
    quint32 h = 2166136261u; // FNV-1a: the same size for the same URL in every run
    for (QChar c : url)
        h = (h ^ c.unicode()) * 16777619u;
    return 300 * 1024 + qint64(h % (1700u * 1024u));
}

QFuture<QVariant> Downloads::start(const QString &url, qint64 size)
{
    if (size < 0)
        size = sizeFor(url);
    auto promise = std::make_shared<QPromise<QVariant>>();
    promise->start();
    const int maximum = int(qMax<qint64>(1, (size + 1023) / 1024));
    promise->setProgressRange(0, maximum);
    promise->setProgressValueAndText(0, QStringLiteral("0 of %1").arg(kib(size)));
    QFuture<QVariant> future = promise->future();

    auto *timer = new QTimer(this);
    timer->setInterval(TickMs);
    auto received = std::make_shared<qint64>(0);
    const bool missing = url.endsWith(QLatin1String("/404"));
    auto end = [this, timer] {
        timer->stop();
        timer->deleteLater();
        Q_EMIT activeCountChanged(--m_active);
    };
    connect(timer, &QTimer::timeout, this, [this, promise, received, size, missing, url, end] {
        if (promise->isCanceled()) { // whoever waits gave up: stop here
            promise->finish();
            end();
            return;
        }
        if (missing) {
            promise->setException(std::make_exception_ptr(std::runtime_error("404 Not Found")));
            promise->finish();
            end();
            return;
        }
        *received = qMin(size, *received + qMax<qint64>(1, m_bytesPerSecond * TickMs / 1000));
        promise->setProgressValueAndText(int((*received + 1023) / 1024),
                                         QStringLiteral("%1 of %2").arg(kib(*received), kib(size)));
        if (*received < size)
            return;
        QByteArray body(qsizetype(size), Qt::Uninitialized);
        for (qsizetype i = 0; i < body.size(); ++i)
            body[i] = char((i * 131 + 7) & 0xff); // not UTF-8: a Lua string of bytes
        promise->addResult(QVariant(body));
        promise->finish();
        end();
    });
    timer->start();
    Q_EMIT activeCountChanged(++m_active);
    Q_EMIT started(url, future);
    return future;
}
