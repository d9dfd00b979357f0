# Installs the build into a scratch DESTDIR and checks every file lands where the README
# says: binaries, the CNI plugin, the systemd unit and the operator's environment file.
file(REMOVE_RECURSE "${OUT}")
execute_process(COMMAND ${CMAKE_COMMAND} -E env DESTDIR=${OUT} ${CMAKE_COMMAND} --install "${BIN}"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(f usr/local/bin/knode usr/local/bin/knode-proxy opt/cni/bin/knode-cni usr/local/lib/systemd/system/knode.service
       usr/local/lib/systemd/system/knode-proxy.service etc/default/knode etc/default/knode-proxy)
  if(NOT EXISTS "${OUT}/${f}")
    message(FATAL_ERROR "missing after install: /${f}")
  endif()
endforeach()
file(READ "${OUT}/usr/local/lib/systemd/system/knode.service" unit)
if(NOT unit MATCHES "ExecStart=/usr/local/bin/knode agent \\$KNODE_ARGS")
  message(FATAL_ERROR "knode.service does not start the installed binary:\n${unit}")
endif()
file(READ "${OUT}/usr/local/lib/systemd/system/knode-proxy.service" unit)
if(NOT unit MATCHES "ExecStart=/usr/local/bin/knode-proxy proxy \\$KNODE_PROXY_ARGS")
  message(FATAL_ERROR "knode-proxy.service does not start the installed knode-proxy:\n${unit}")
endif()
# The environment file is the operator's: a second install must not overwrite it.
file(WRITE "${OUT}/etc/default/knode" "KNODE_ARGS=\"--mine\"\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E env DESTDIR=${OUT} ${CMAKE_COMMAND} --install "${BIN}"
                RESULT_VARIABLE rc OUTPUT_QUIET)
file(READ "${OUT}/etc/default/knode" env)
if(NOT env MATCHES "--mine")
  message(FATAL_ERROR "a reinstall overwrote /etc/default/knode")
endif()
file(REMOVE_RECURSE "${OUT}")
message(STATUS "install layout ok")
