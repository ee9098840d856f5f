// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QIsle/qisleglobal.h>

#include <QtCore/QException>
#include <QtCore/QString>

#include <memory>

// The one error type of QIsle. Blocking calls throw it; a failed
// QFuture<QVariant> rethrows it from result()/waitForFinished(), and
// QFuture::onFailed can catch it by type.
class QISLE_EXPORT QIsleError : public QException
{
public:
    enum class Kind {
        Runtime,    // a Lua runtime error (error(), arithmetic on nil, ...)
        Syntax,     // the chunk does not compile
        Memory,     // Lua ran out of memory or hit QIsleOptions::memoryLimit
        Callback,   // a C++ host function (registerFunction, exec) threw
        Conversion, // a value cannot cross between Lua and QVariant
        NotFound,   // call(): no such function
        Cancelled,  // the request's future was canceled
        Timeout,    // the request ran past its timeout
        Shutdown,   // the isle is shut down or being destroyed
        Init,       // spawn()'s init function failed
        Busy,       // QIsleOptions::maxPending requests are already queued
    };

    QIsleError(Kind kind, const QString &message, const QString &traceback = {}, int line = -1);
    ~QIsleError() override;
    QIsleError(const QIsleError &other);
    QIsleError &operator=(const QIsleError &other);

    Kind kind() const noexcept;
    // Readable text without the traceback; the "chunk:line:" prefix of the
    // failing chunk is moved into line().
    QString message() const;
    // Lua's traceback ("stack traceback: ...") when there is one.
    QString traceback() const;
    // 1-based line in the chunk where the error arose, -1 when unknown.
    int line() const noexcept;
    // "Runtime error at line 3: boom"
    const char *what() const noexcept override;

    void raise() const override;
    QIsleError *clone() const override;

    static QString kindName(Kind kind);

private:
    struct Data;
    std::shared_ptr<const Data> d;
};
