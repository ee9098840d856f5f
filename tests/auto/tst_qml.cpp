// The QML module from QML: Qt Quick Test runs tests/auto/qml/tst_*.qml, which
// `import QIsle` through the import path of the build tree (qmldir and
// plugin, as an installed module is found), and load the console demo.
#include <QtQml/QQmlContext>
#include <QtQml/QQmlEngine>
#include <QtQuickTest/quicktest.h>

class Setup : public QObject
{
    Q_OBJECT
public Q_SLOTS:
    void qmlEngineAvailable(QQmlEngine *engine)
    {
        engine->addImportPath(QStringLiteral(QISLE_QML_IMPORT_DIR));
        engine->rootContext()->setContextProperty(QStringLiteral("consoleUrl"),
                                                  QUrl::fromLocalFile(QStringLiteral(QISLE_CONSOLE_QML)));
    }
};

QUICK_TEST_MAIN_WITH_SETUP(tst_qml, Setup)
#include "tst_qml.moc"
