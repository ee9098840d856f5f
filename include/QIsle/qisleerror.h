// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qisleerror.h
/// \brief QIsleError, the one error type of QIsle.

#include <QIsle/qisleglobal.h>

#include <QtCore/QException>
#include <QtCore/QString>

#include <memory>

/// The one error type of QIsle. Blocking calls throw it; a failed
/// QFuture<QVariant> rethrows it from result()/waitForFinished(), and
/// QFuture::onFailed can catch it by type.
class QISLE_EXPORT QIsleError : public QException
{
public:
    /// What went wrong.
    enum class Kind {
        Runtime,    ///< a Lua runtime error (error(), arithmetic on nil, ...)
        Syntax,     ///< the chunk does not compile
        Memory,     ///< Lua ran out of memory or hit QIsleOptions::memoryLimit
        Callback,   ///< a C++ host function (registerFunction, exec) threw
        Conversion, ///< a value cannot cross between Lua and QVariant
        NotFound,   ///< call(): no such function
        Cancelled,  ///< the request's future was canceled
        Timeout,    ///< the request ran past its timeout
        Shutdown,   ///< the isle is shut down or being destroyed
        Init,       ///< spawn()'s init function failed
        Busy,       ///< QIsleOptions::maxPending requests are already queued
    };

    /// An error of the given kind; line is 1-based, -1 when unknown.
    QIsleError(Kind kind, const QString &message, const QString &traceback = {}, int line = -1);
    /// Destroys the error (its text is shared between copies).
    ~QIsleError() override;
    /// Copies the error; copies share their text.
    QIsleError(const QIsleError &other);
    /// Copies the error; copies share their text.
    QIsleError &operator=(const QIsleError &other);

    /// What went wrong.
    Kind kind() const noexcept;
    /// Readable text without the traceback; the "chunk:line:" prefix of the
    /// failing chunk is moved into line(). Only a prefix that names the
    /// request's own chunk is dropped: an error that arose in another chunk
    /// (a function defined by init, say) keeps its "name:N: ".
    QString message() const;
    /// Lua's traceback ("stack traceback: ...") when there is one.
    QString traceback() const;
    /// 1-based line in the chunk where the error arose, -1 when unknown.
    int line() const noexcept;
    /// "Runtime error at line 3: boom"
    const char *what() const noexcept override;

    /// Throws a copy of this error (QException: how a QFuture rethrows it).
    void raise() const override;
    /// A heap copy of this error (QException: how a QFuture stores it).
    QIsleError *clone() const override;

    /// The kind's name as written in code: "Runtime", "Syntax", ...
    static QString kindName(Kind kind);

private:
    struct Data;
    std::shared_ptr<const Data> d;
};
