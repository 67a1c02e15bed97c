# The installed shared libraries (libmigshim, libmigctl): how they are built
# and what goes with them. See doc/hacking.md, "Installing".

# mig_shared_library(TARGET NAME MAP SOURCES...): libNAME.so.MAJOR.MINOR.PATCH
# with SONAME libNAME.so.MAJOR (the project version, CMakeLists.txt), every
# symbol hidden but those the version script MAP exports, and no undefined
# symbol left for the program to supply.
function(mig_shared_library target name map)
  add_library(${target} SHARED ${ARGN})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${name}
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}
    LINK_DEPENDS ${map})
  target_link_options(${target} PRIVATE
    -Wl,--version-script=${map} -Wl,--no-undefined -Wl,-z,relro -Wl,-z,now)
endfunction()

# mig_install_library(TARGET HEADER PC_IN [EXTRA_HEADERS...]): installs the
# library (runtime and the development symlink), its public header(s) under
# include/migrationd/, and its pkg-config file from PC_IN.
function(mig_install_library target header pc_in)
  get_target_property(name ${target} OUTPUT_NAME)
  install(TARGETS ${target}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_SKIP COMPONENT runtime)
  install(TARGETS ${target}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_ONLY COMPONENT dev)
  install(FILES ${header} ${ARGN} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/migrationd
          COMPONENT dev)
  # pkg-config paths relative to ${prefix} where they can be, so that
  # PKG_CONFIG_SYSROOT_DIR (a DESTDIR, a sysroot) applies to them.
  set(MIG_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(MIG_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  if(IS_ABSOLUTE ${CMAKE_INSTALL_LIBDIR})
    set(MIG_PC_LIBDIR ${CMAKE_INSTALL_LIBDIR})
  endif()
  if(IS_ABSOLUTE ${CMAKE_INSTALL_INCLUDEDIR})
    set(MIG_PC_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
  configure_file(${pc_in} ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endfunction()
