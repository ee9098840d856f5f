// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/QFutureInterface>
#include <QtCore/QMutexLocker>
#include <QtCore/QVariant>

#include <exception>
#include <optional>

// A future's result store read and emptied safely across threads in Qt 6.4.
// Two gaps in Qt's own code: QFutureInterface<T>::reportException clears the
// stored results without the future's mutex (QPromise::setException calls
// it), and QFuture::resultAt() copies a result after it let go of the
// mutex. A request's emits are read by other threads while it runs (a
// QFutureWatcher's resultReadyAt, QIsleJob, the pool's relay), so a failure
// must empty the store under the lock, and our own readers copy under it.
// Any thread; every function locks the future's mutex.
namespace FutureStore {

// Fails the future: its results go first, under the lock (the exception
// takes their place in Qt's private state), then the error is reported
// through the base class, which does not touch them. Nothing when it
// failed already.
template<typename Error>
void reportFailure(QFutureInterface<QVariant> &state, const Error &error)
{
    {
        QMutexLocker lock(&state.mutex());
        if (state.hasException())
            return;
        state.resultStoreBase().template clear<QVariant>();
    }
    static_cast<QFutureInterfaceBase &>(state).reportException(error);
}

// Result `index` copied under the future's lock; none when it is not there
// or the future failed (its error is reported by whoever finishes).
inline std::optional<QVariant> resultAt(QFutureInterface<QVariant> &state, int index)
{
    QMutexLocker lock(&state.mutex());
    if (state.hasException() || !state.resultStoreBase().contains(index))
        return std::nullopt;
    return state.resultStoreBase().resultAt(index).template value<QVariant>();
}

} // namespace FutureStore
