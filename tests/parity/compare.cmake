# Runs one parity case under lua5.4 and through an isle, from the cases
# folder (so both name the chunk "<case>:"), and fails on any difference in
# standard output or exit code, showing a unified diff.
#   cmake -DLUA=... -DRUNNER=... -DCASE_DIR=... -DCASE=x.lua -DOUT_DIR=... -P compare.cmake
if(NOT LUA OR NOT EXISTS "${LUA}")
    message(FATAL_ERROR "the plain lua5.4 interpreter was not found (install lua5.4: scripts/install-deps.sh)")
endif()
# lua5.4 would run LUA_INIT first; both would read LUA_PATH and LUA_CPATH.
foreach(variable LUA_INIT LUA_INIT_5_4 LUA_PATH LUA_PATH_5_4 LUA_CPATH LUA_CPATH_5_4)
    unset(ENV{${variable}})
endforeach()
file(MAKE_DIRECTORY "${OUT_DIR}")
execute_process(COMMAND "${LUA}" "${CASE}" WORKING_DIRECTORY "${CASE_DIR}"
    OUTPUT_VARIABLE luaOut ERROR_VARIABLE luaErr RESULT_VARIABLE luaCode)
execute_process(COMMAND "${RUNNER}" "${CASE}" WORKING_DIRECTORY "${CASE_DIR}"
    OUTPUT_VARIABLE isleOut ERROR_VARIABLE isleErr RESULT_VARIABLE isleCode)
set(luaFile "${OUT_DIR}/${CASE}.lua54.txt")
set(isleFile "${OUT_DIR}/${CASE}.qisle.txt")
file(WRITE "${luaFile}" "${luaOut}")
file(WRITE "${isleFile}" "${isleOut}")
if(luaOut STREQUAL "")
    message(FATAL_ERROR "${CASE}: lua5.4 printed nothing (exit ${luaCode}): ${luaErr}")
endif()
if(NOT luaOut STREQUAL isleOut)
    execute_process(COMMAND diff -u "${luaFile}" "${isleFile}" OUTPUT_VARIABLE difference)
    message(FATAL_ERROR "${CASE}: output differs (- lua5.4, + qisle):\n${difference}\nqisle stderr: ${isleErr}")
endif()
if(NOT luaCode STREQUAL isleCode)
    message(FATAL_ERROR "${CASE}: exit code ${luaCode} under lua5.4, ${isleCode} through qisle\nlua5.4: ${luaErr}\nqisle: ${isleErr}")
endif()
# A sanitizer's report in an otherwise identical run still shows in the log.
if(NOT isleErr STREQUAL "")
    message(STATUS "${CASE}: qisle stderr:\n${isleErr}")
endif()
string(REGEX MATCHALL "\n" lines "${luaOut}")
list(LENGTH lines count)
message(STATUS "${CASE}: ${count} lines identical")
