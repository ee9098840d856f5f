// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QtCore/QFuture>
#include <QtCore/QObject>
#include <QtCore/QVariant>

// The application side of the download example: simulated downloads, each a
// QPromise<QVariant> that a QTimer of the GUI thread fills. The panel hands
// them to scripts as the async host function app.download (scripts wait for
// the future without holding the Lua thread).
//
//     QFuture<QVariant> f = downloads.start("https://example.org/a.tar.gz");
//
// Every tick adds bytesPerSecond / 20 bytes and reports progress (in KiB,
// with a "received of total" text); the future finishes with the bytes (a
// QByteArray). A URL ending in /404 fails with "404 Not Found" after its
// first tick. Canceling the future (the script stopped, or Stop on the
// download's row) stops the download at its next tick.
class Downloads : public QObject
{
    Q_OBJECT
public:
    explicit Downloads(QObject *parent = nullptr);
    ~Downloads() override;

    // size < 0: a size of 0.3-2 MB that depends on the URL only.
    QFuture<QVariant> start(const QString &url, qint64 size = -1);

    // Downloads not finished yet.
    int activeCount() const { return m_active; }
    qint64 bytesPerSecond() const { return m_bytesPerSecond; }
    void setBytesPerSecond(qint64 rate) { m_bytesPerSecond = qMax<qint64>(1, rate); }

    static qint64 sizeFor(const QString &url);
    static constexpr int TickMs = 50;

Q_SIGNALS:
    // A download began: the panel lists it with its own progress and Stop.
    void started(const QString &url, const QFuture<QVariant> &future);
    void activeCountChanged(int count);

private:
    int m_active = 0;
    qint64 m_bytesPerSecond = 800 * 1024;
};
