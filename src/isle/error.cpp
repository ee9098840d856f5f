// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include <QIsle/qisleerror.h>

struct QIsleError::Data
{
    Kind kind;
    QString message;
    QString traceback;
    int line;
    QByteArray what; // built once: what() must not allocate on every call
};

QIsleError::QIsleError(Kind kind, const QString &message, const QString &traceback, int line)
{
    auto data = std::make_shared<Data>(Data{kind, message, traceback, line, {}});
    QString text = kindName(kind) + QLatin1String(line > 0 ? " error at line " : " error");
    if (line > 0)
        text += QString::number(line);
    text += QLatin1String(": ") + message;
    data->what = text.toUtf8();
    d = std::move(data);
}

QIsleError::~QIsleError() = default;
QIsleError::QIsleError(const QIsleError &other) = default;
QIsleError &QIsleError::operator=(const QIsleError &other) = default;

QIsleError::Kind QIsleError::kind() const noexcept { return d->kind; }
QString QIsleError::message() const { return d->message; }
QString QIsleError::traceback() const { return d->traceback; }
int QIsleError::line() const noexcept { return d->line; }
const char *QIsleError::what() const noexcept { return d->what.constData(); }
void QIsleError::raise() const { throw *this; }
QIsleError *QIsleError::clone() const { return new QIsleError(*this); }

QString QIsleError::kindName(Kind kind)
{
    switch (kind) {
    case Kind::Runtime: return QStringLiteral("Runtime");
    case Kind::Syntax: return QStringLiteral("Syntax");
    case Kind::Memory: return QStringLiteral("Memory");
    case Kind::Callback: return QStringLiteral("Callback");
    case Kind::Conversion: return QStringLiteral("Conversion");
    case Kind::NotFound: return QStringLiteral("NotFound");
    case Kind::Cancelled: return QStringLiteral("Cancelled");
    case Kind::Timeout: return QStringLiteral("Timeout");
    case Kind::Shutdown: return QStringLiteral("Shutdown");
    case Kind::Init: return QStringLiteral("Init");
    case Kind::Busy: return QStringLiteral("Busy");
    }
    return QStringLiteral("Unknown");
}
