# minivmm.cmake: builds minivmm (our small real KVM VMM) and its guest
# program, and registers minivmm's self-test. Included from
# vmm-shim/CMakeLists.txt after the `migshim` target exists.
#
# The guest is a freestanding x86-64 program, so it must not see the
# project's CMAKE_C_FLAGS (the Sanitize build adds -fsanitize=..., which a
# bare-metal program cannot link or run): it is compiled and linked by custom
# commands with its own flags, flattened with objcopy, and embedded into
# minivmm as a generated C array (minivmm_guest_image.c).

find_package(Threads REQUIRED)

set(MINIVMM_GUEST_SRC ${CMAKE_CURRENT_SOURCE_DIR}/guest)
set(MINIVMM_GUEST_OUT ${CMAKE_CURRENT_BINARY_DIR}/minivmm-guest)
set(MINIVMM_GUEST_CFLAGS
    -std=gnu11 -O2 -ffreestanding -fno-builtin -fno-pic -fno-pie
    -mno-red-zone -mgeneral-regs-only -mcmodel=small -fno-stack-protector
    -fno-asynchronous-unwind-tables -fno-unwind-tables -fcf-protection=none
    -fno-tree-loop-distribute-patterns -nostdlib
    -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes
    -I${CMAKE_CURRENT_SOURCE_DIR})
find_program(MINIVMM_OBJCOPY NAMES objcopy ${CMAKE_OBJCOPY} REQUIRED)

set(MINIVMM_GUEST_OBJS)
foreach(src start.S guest.c)
  set(obj ${MINIVMM_GUEST_OUT}/${src}.o)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${MINIVMM_GUEST_OUT}
    COMMAND ${CMAKE_C_COMPILER} ${MINIVMM_GUEST_CFLAGS}
            -c ${MINIVMM_GUEST_SRC}/${src} -o ${obj}
    DEPENDS ${MINIVMM_GUEST_SRC}/${src}
            ${CMAKE_CURRENT_SOURCE_DIR}/minivmm_abi.h
    COMMENT "minivmm guest: ${src}"
    VERBATIM)
  list(APPEND MINIVMM_GUEST_OBJS ${obj})
endforeach()

add_custom_command(
  OUTPUT ${MINIVMM_GUEST_OUT}/guest.elf ${MINIVMM_GUEST_OUT}/guest.bin
  COMMAND ${CMAKE_C_COMPILER} -nostdlib -static -no-pie
          -Wl,-T,${MINIVMM_GUEST_SRC}/guest.ld -Wl,--build-id=none
          -Wl,--no-warn-rwx-segments
          -o ${MINIVMM_GUEST_OUT}/guest.elf ${MINIVMM_GUEST_OBJS}
  COMMAND ${MINIVMM_OBJCOPY} -O binary ${MINIVMM_GUEST_OUT}/guest.elf
          ${MINIVMM_GUEST_OUT}/guest.bin
  DEPENDS ${MINIVMM_GUEST_OBJS} ${MINIVMM_GUEST_SRC}/guest.ld
  COMMENT "minivmm guest: link flat image"
  VERBATIM)

add_custom_command(
  OUTPUT ${MINIVMM_GUEST_OUT}/minivmm_guest_image.c
  COMMAND ${CMAKE_COMMAND} -DIN=${MINIVMM_GUEST_OUT}/guest.bin
          -DOUT=${MINIVMM_GUEST_OUT}/minivmm_guest_image.c
          -P ${MINIVMM_GUEST_SRC}/embed.cmake
  DEPENDS ${MINIVMM_GUEST_OUT}/guest.bin ${MINIVMM_GUEST_SRC}/embed.cmake
  COMMENT "minivmm guest: embed image"
  VERBATIM)

add_executable(minivmm
  minivmm.c
  minivmm_vm.c
  minivmm_state.c
  ${MINIVMM_GUEST_OUT}/minivmm_guest_image.c)
target_link_libraries(minivmm PRIVATE migshim Threads::Threads)

add_test(NAME minivmm_selftest
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/minivmm_selftest.sh
          $<TARGET_FILE:minivmm>)
set_tests_properties(minivmm_selftest PROPERTIES
  SKIP_RETURN_CODE 77
  TIMEOUT 300)
