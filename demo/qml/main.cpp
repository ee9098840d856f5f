// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// A Lua console in Qt Quick: qisle-qml-console [--run LINE]...
// Each --run line is typed into the console at start (for demos and
// screenshots).
#include <QtCore/QCommandLineParser>
#include <QtGui/QGuiApplication>
#include <QtQml/QQmlApplicationEngine>
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
    const QCommandLineOption run(QStringLiteral("run"), QStringLiteral("Type LINE into the console at start."),
                                 QStringLiteral("LINE"));
    parser.addOption(run);
    parser.process(app);

    if (qEnvironmentVariableIsEmpty("QT_QUICK_CONTROLS_STYLE"))
        QQuickStyle::setStyle(QStringLiteral("Fusion"));
    QQmlApplicationEngine engine;
    engine.setInitialProperties({{QStringLiteral("startupLines"), parser.values(run)}});
    QObject::connect(&engine, &QQmlApplicationEngine::objectCreationFailed, &app,
                     [] { QCoreApplication::exit(1); }, Qt::QueuedConnection);
    engine.load(QUrl(QStringLiteral("qrc:/Main.qml")));
    return app.exec();
}
