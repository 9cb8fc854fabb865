# Install layout for Debian-style systems (included by the top-level CMakeLists.txt; the binary
# itself is installed there). With --prefix /usr:
#   /usr/bin/mqdr
#   /usr/lib/systemd/system/mqdr.service     ExecStart follows the install prefix
#   /usr/lib/sysusers.d/mqdr.conf            the `mqdr` system user
#   /etc/mqdr/mqdr.yaml.example              never touches an existing /etc/mqdr/mqdr.yaml
#   /usr/share/doc/mqdr/                     README.md, docs/*.md
# Any other prefix P puts the example under P/etc/mqdr and the unit under P/lib/systemd/system.
# Paths are worked out when installing, so `cmake --install build --prefix DIR` and DESTDIR
# both land everything under the chosen root.

set(MQDR_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "systemd unit directory, relative to the install prefix")
set(MQDR_SYSUSERSDIR "lib/sysusers.d" CACHE STRING
    "sysusers.d directory, relative to the install prefix")

# The unit and the example config depend on the prefix chosen at install time, so they are
# written by install code rather than configured here.
set(_mqdr_stage "${CMAKE_CURRENT_BINARY_DIR}/install-stage")
install(CODE "
  set(_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  string(REGEX REPLACE \"/+$\" \"\" _prefix \"\${_prefix}\")
  # GNU/Debian convention: a /usr prefix keeps its configuration in /etc.
  if(_prefix STREQUAL \"/usr\" OR _prefix STREQUAL \"\")
    set(_etc \"/etc\")
  else()
    set(_etc \"\${_prefix}/etc\")
  endif()
  set(_bindir \"\${_prefix}/${CMAKE_INSTALL_BINDIR}\")

  file(READ \"${PROJECT_SOURCE_DIR}/config/mqdr.service\" _unit)
  string(REPLACE \"/usr/bin/mqdr\" \"\${_bindir}/mqdr\" _unit \"\${_unit}\")
  string(REPLACE \"/etc/mqdr/\" \"\${_etc}/mqdr/\" _unit \"\${_unit}\")
  string(REPLACE \"/etc/default/mqdr\" \"\${_etc}/default/mqdr\" _unit \"\${_unit}\")
  string(REPLACE \"/usr/share/doc/mqdr\" \"\${_prefix}/${CMAKE_INSTALL_DOCDIR}\" _unit \"\${_unit}\")
  # One staging dir per destination, so that concurrent installs never mix their units.
  string(MD5 _key \"\$ENV{DESTDIR}\${_prefix}\")
  file(WRITE \"${_mqdr_stage}/\${_key}/mqdr.service\" \"\${_unit}\")
  file(INSTALL DESTINATION \"\${_prefix}/${MQDR_SYSTEMD_UNITDIR}\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"${_mqdr_stage}/\${_key}/mqdr.service\")

  file(INSTALL DESTINATION \"\${_prefix}/${MQDR_SYSUSERSDIR}\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       RENAME mqdr.conf FILES \"${PROJECT_SOURCE_DIR}/config/mqdr.sysusers.conf\")

  # Only the example is (re)written; the operator's mqdr.yaml is never created or replaced.
  file(INSTALL DESTINATION \"\${_etc}/mqdr\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       DIR_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
       RENAME mqdr.yaml.example FILES \"${PROJECT_SOURCE_DIR}/config/mqdr.example.yaml\")
")

# Docs are collected when installing, so files added after configuring are included.
install(CODE "
  file(GLOB _docs \"${PROJECT_SOURCE_DIR}/docs/*.md\")
  foreach(_doc README.md LICENSE)
    if(EXISTS \"${PROJECT_SOURCE_DIR}/\${_doc}\")
      list(APPEND _docs \"${PROJECT_SOURCE_DIR}/\${_doc}\")
    endif()
  endforeach()
  if(_docs)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES \${_docs})
  endif()
")
