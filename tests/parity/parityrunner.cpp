// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// Runs a Lua script through an isle as `lua5.4 <file>` runs it: the chunk is
// named "@<file>" (errors read "<file>:<line>:"), print() arrives through
// QIsle::printed and goes to stdout, one line each. Every library is open
// (AllLibraries), as in the plain interpreter. An uncaught error goes to
// stderr and the exit code is 1, as lua5.4's.
//
//   qisle_parity_runner <file.lua>
#include <QIsle/QIsle>

#include <QtCore/QCoreApplication>
#include <QtCore/QFile>

#include <cstdio>
#include <string>

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <file.lua>\n", argv[0]);
        return 2;
    }
    const QString path = QString::fromLocal8Bit(argv[1]);
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        std::fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    const QString script = QString::fromUtf8(file.readAll());

    QIsleOptions options;
    options.libraries = QIsleOptions::AllLibraries;
    auto isle = QIsle::spawn({}, options);
    QObject::connect(isle.get(), &QIsle::printed, [](const QString &line) {
        const QByteArray utf8 = line.toUtf8();
        std::fwrite(utf8.constData(), 1, size_t(utf8.size()), stdout);
        std::fputc('\n', stdout);
    });

    QIsleRequestOptions request;
    request.chunkName = QLatin1Char('@') + path;
    int exitCode = 0;
    std::string failure;
    try {
        isle->eval(script, request);
    } catch (const QIsleError &e) {
        failure = e.what();
        exitCode = 1;
    }
    // Emits, in this thread, every line the event loop would have: a single
    // sendPostedEvents() gives only the first slice of a long burst.
    isle->shutdown();
    std::fflush(stdout);
    if (exitCode)
        std::fprintf(stderr, "qisle: %s\n", failure.c_str());
    return exitCode;
}
