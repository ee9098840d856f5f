// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// A Lua console in Qt Quick: qisle-qml-console [--run LINE]... [--screenshot FILE]
// Each --run line is typed into the console at start, once the previous
// one ended or ran for a second (for demos and screenshots).
#include <QtCore/QCommandLineParser>
#include <QtGui/QGuiApplication>
#include <QtCore/QTimer>
#include <QtQml/QQmlApplicationEngine>
#include <QtQuick/QQuickWindow>
#include <QtQuickControls2/QQuickStyle>

// Generated into QIsle::Qml: referencing it keeps the library linked, and
// loading the library registers `import QIsle` (as Qt's own plugins do).
void qml_register_types_QIsle();

int main(int argc, char **argv)
{
    volatile auto registration = &qml_register_types_QIsle;
    Q_UNUSED(registration)

    QGuiApplication app(argc, argv);
    app.setApplicationName(QStringLiteral("QIsle console"));
    QCommandLineParser parser;
    parser.addHelpOption();
    const QCommandLineOption run(QStringLiteral("run"), QStringLiteral("Type LINE into the console at start (once the previous line "
                                                                 "ended or ran for a second)."),
                                 QStringLiteral("LINE"));
    parser.addOption(run);
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("Save the window to FILE after 3 s, then quit "
                                                       "(QT_QPA_PLATFORM=offscreen QT_QUICK_BACKEND=software work)."),
                                        QStringLiteral("file"));
    parser.addOption(screenshot);
    parser.process(app);

    if (qEnvironmentVariableIsEmpty("QT_QUICK_CONTROLS_STYLE"))
        QQuickStyle::setStyle(QStringLiteral("Fusion"));
    QQmlApplicationEngine engine;
    engine.setInitialProperties({{QStringLiteral("startupLines"), parser.values(run)}});
    QObject::connect(&engine, &QQmlApplicationEngine::objectCreationFailed, &app,
                     [] { QCoreApplication::exit(1); }, Qt::QueuedConnection);
    engine.load(QUrl(QStringLiteral("qrc:/Main.qml")));
    if (parser.isSet(screenshot)) {
        QTimer::singleShot(3000, &app, [&engine, file = parser.value(screenshot)] {
            auto *window = engine.rootObjects().isEmpty() ? nullptr
                                                          : qobject_cast<QQuickWindow *>(engine.rootObjects().constFirst());
            if (!window || !window->grabWindow().save(file))
                qCritical("cannot write %s", qPrintable(file));
            QCoreApplication::quit();
        });
    }
    return app.exec();
}
