// The console demo's stage (demo/qml/Console.qml), driven by scripts through
// Isle.exposeObject: properties written in the GUI thread, a QML function
// called, a button's signal handled in Lua.
import QtQuick
import QtTest
import QIsle

TestCase {
    id: testCase
    name: "ScriptedUi"
    when: windowShown
    visible: true
    width: 640
    height: 400

    Isle { id: lua }
    QtObject { id: target; property int n: 3 }

    function finish(job) {
        tryCompare(job, "running", false, 5000)
        return job
    }

    // exposeObject on the element: the object reaches a VM started later, and
    // a restarted one.
    function test_exposeObjectSurvivesRestart() {
        lua.exposeObject("app.target", target)
        compare(finish(lua.evaluate("return app.target.n")).result, 3)
        lua.restart()
        compare(finish(lua.evaluate("app.target.n = 7 return app.target.n")).result, 7)
        compare(target.n, 7)
    }

    function test_scriptDrivesTheUi() {
        const component = Qt.createComponent(consoleUrl)
        compare(component.status, Component.Ready, component.errorString())
        const console_ = createTemporaryObject(component, testCase, { width: 640, height: 400 })
        const stage = findChild(console_, "stage")
        const label = findChild(console_, "stageLabel")
        const list = findChild(console_, "stageList")
        const button = findChild(console_, "stageButton")
        verify(stage && label && list && button)

        console_.submit("ui.label.text = 'from Lua' ui.stage.color = 'tomato' ui.list:add('one') ui.list:add('two')")
        // The script's writes arrive one by one (each a call into the GUI thread).
        tryCompare(label, "text", "from Lua", 5000)
        tryVerify(() => stage.color.toString() === "#ff6347", 5000, stage.color.toString())
        tryCompare(list, "count", 2, 5000)

        // Reads come back as Lua values.
        console_.submit("return ui.list.count * 10 + #ui.label.text")
        tryVerify(() => console_.output.count > 0 && console_.output.get(console_.output.count - 1).line === "28", 5000)

        // A button's signal, handled in Lua (a request of its own per click).
        console_.submit("pressed = 0 ui.button.clicked:connect(function() pressed = pressed + 1 ui.label.text = 'pressed ' .. pressed end)")
        tryVerify(() => !(console_.currentJob && console_.currentJob.running), 5000)
        mouseClick(button)
        tryCompare(label, "text", "pressed 1", 5000)
        mouseClick(button)
        tryCompare(label, "text", "pressed 2", 5000)
    }
}
