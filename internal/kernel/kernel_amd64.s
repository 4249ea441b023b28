//go:build amd64

#include "textflag.h"

// Vector constants, eight lanes each (AVX2 has no broadcast from memory
// operands of arithmetic instructions).
// log2(e)
DATA silulog2e<>+0(SB)/4, $0x3fb8aa3b
DATA silulog2e<>+4(SB)/4, $0x3fb8aa3b
DATA silulog2e<>+8(SB)/4, $0x3fb8aa3b
DATA silulog2e<>+12(SB)/4, $0x3fb8aa3b
DATA silulog2e<>+16(SB)/4, $0x3fb8aa3b
DATA silulog2e<>+20(SB)/4, $0x3fb8aa3b
DATA silulog2e<>+24(SB)/4, $0x3fb8aa3b
DATA silulog2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL silulog2e<>(SB), RODATA|NOPTR, $32
// ln2, high part (0.693359375)
DATA siluln2hi<>+0(SB)/4, $0x3f318000
DATA siluln2hi<>+4(SB)/4, $0x3f318000
DATA siluln2hi<>+8(SB)/4, $0x3f318000
DATA siluln2hi<>+12(SB)/4, $0x3f318000
DATA siluln2hi<>+16(SB)/4, $0x3f318000
DATA siluln2hi<>+20(SB)/4, $0x3f318000
DATA siluln2hi<>+24(SB)/4, $0x3f318000
DATA siluln2hi<>+28(SB)/4, $0x3f318000
GLOBL siluln2hi<>(SB), RODATA|NOPTR, $32
// ln2 − ln2hi, negated (2.12194440e-4)
DATA siluln2lo<>+0(SB)/4, $0x395e8083
DATA siluln2lo<>+4(SB)/4, $0x395e8083
DATA siluln2lo<>+8(SB)/4, $0x395e8083
DATA siluln2lo<>+12(SB)/4, $0x395e8083
DATA siluln2lo<>+16(SB)/4, $0x395e8083
DATA siluln2lo<>+20(SB)/4, $0x395e8083
DATA siluln2lo<>+24(SB)/4, $0x395e8083
DATA siluln2lo<>+28(SB)/4, $0x395e8083
GLOBL siluln2lo<>(SB), RODATA|NOPTR, $32
// the polynomial of Cephes expf
DATA silup0<>+0(SB)/4, $0x39506967
DATA silup0<>+4(SB)/4, $0x39506967
DATA silup0<>+8(SB)/4, $0x39506967
DATA silup0<>+12(SB)/4, $0x39506967
DATA silup0<>+16(SB)/4, $0x39506967
DATA silup0<>+20(SB)/4, $0x39506967
DATA silup0<>+24(SB)/4, $0x39506967
DATA silup0<>+28(SB)/4, $0x39506967
GLOBL silup0<>(SB), RODATA|NOPTR, $32
DATA silup1<>+0(SB)/4, $0x3ab743ce
DATA silup1<>+4(SB)/4, $0x3ab743ce
DATA silup1<>+8(SB)/4, $0x3ab743ce
DATA silup1<>+12(SB)/4, $0x3ab743ce
DATA silup1<>+16(SB)/4, $0x3ab743ce
DATA silup1<>+20(SB)/4, $0x3ab743ce
DATA silup1<>+24(SB)/4, $0x3ab743ce
DATA silup1<>+28(SB)/4, $0x3ab743ce
GLOBL silup1<>(SB), RODATA|NOPTR, $32
DATA silup2<>+0(SB)/4, $0x3c088908
DATA silup2<>+4(SB)/4, $0x3c088908
DATA silup2<>+8(SB)/4, $0x3c088908
DATA silup2<>+12(SB)/4, $0x3c088908
DATA silup2<>+16(SB)/4, $0x3c088908
DATA silup2<>+20(SB)/4, $0x3c088908
DATA silup2<>+24(SB)/4, $0x3c088908
DATA silup2<>+28(SB)/4, $0x3c088908
GLOBL silup2<>(SB), RODATA|NOPTR, $32
DATA silup3<>+0(SB)/4, $0x3d2aa9c1
DATA silup3<>+4(SB)/4, $0x3d2aa9c1
DATA silup3<>+8(SB)/4, $0x3d2aa9c1
DATA silup3<>+12(SB)/4, $0x3d2aa9c1
DATA silup3<>+16(SB)/4, $0x3d2aa9c1
DATA silup3<>+20(SB)/4, $0x3d2aa9c1
DATA silup3<>+24(SB)/4, $0x3d2aa9c1
DATA silup3<>+28(SB)/4, $0x3d2aa9c1
GLOBL silup3<>(SB), RODATA|NOPTR, $32
DATA silup4<>+0(SB)/4, $0x3e2aaaaa
DATA silup4<>+4(SB)/4, $0x3e2aaaaa
DATA silup4<>+8(SB)/4, $0x3e2aaaaa
DATA silup4<>+12(SB)/4, $0x3e2aaaaa
DATA silup4<>+16(SB)/4, $0x3e2aaaaa
DATA silup4<>+20(SB)/4, $0x3e2aaaaa
DATA silup4<>+24(SB)/4, $0x3e2aaaaa
DATA silup4<>+28(SB)/4, $0x3e2aaaaa
GLOBL silup4<>(SB), RODATA|NOPTR, $32
DATA silup5<>+0(SB)/4, $0x3f000000
DATA silup5<>+4(SB)/4, $0x3f000000
DATA silup5<>+8(SB)/4, $0x3f000000
DATA silup5<>+12(SB)/4, $0x3f000000
DATA silup5<>+16(SB)/4, $0x3f000000
DATA silup5<>+20(SB)/4, $0x3f000000
DATA silup5<>+24(SB)/4, $0x3f000000
DATA silup5<>+28(SB)/4, $0x3f000000
GLOBL silup5<>(SB), RODATA|NOPTR, $32
// 1
DATA siluone<>+0(SB)/4, $0x3f800000
DATA siluone<>+4(SB)/4, $0x3f800000
DATA siluone<>+8(SB)/4, $0x3f800000
DATA siluone<>+12(SB)/4, $0x3f800000
DATA siluone<>+16(SB)/4, $0x3f800000
DATA siluone<>+20(SB)/4, $0x3f800000
DATA siluone<>+24(SB)/4, $0x3f800000
DATA siluone<>+28(SB)/4, $0x3f800000
GLOBL siluone<>(SB), RODATA|NOPTR, $32
// -87: e^t underflows below
DATA silulo<>+0(SB)/4, $0xc2ae0000
DATA silulo<>+4(SB)/4, $0xc2ae0000
DATA silulo<>+8(SB)/4, $0xc2ae0000
DATA silulo<>+12(SB)/4, $0xc2ae0000
DATA silulo<>+16(SB)/4, $0xc2ae0000
DATA silulo<>+20(SB)/4, $0xc2ae0000
DATA silulo<>+24(SB)/4, $0xc2ae0000
DATA silulo<>+28(SB)/4, $0xc2ae0000
GLOBL silulo<>(SB), RODATA|NOPTR, $32
// 88: e^t overflows above
DATA siluhi<>+0(SB)/4, $0x42b00000
DATA siluhi<>+4(SB)/4, $0x42b00000
DATA siluhi<>+8(SB)/4, $0x42b00000
DATA siluhi<>+12(SB)/4, $0x42b00000
DATA siluhi<>+16(SB)/4, $0x42b00000
DATA siluhi<>+20(SB)/4, $0x42b00000
DATA siluhi<>+24(SB)/4, $0x42b00000
DATA siluhi<>+28(SB)/4, $0x42b00000
GLOBL siluhi<>(SB), RODATA|NOPTR, $32
// 127, the float32 exponent bias (int32)
DATA silubias<>+0(SB)/4, $0x0000007f
DATA silubias<>+4(SB)/4, $0x0000007f
DATA silubias<>+8(SB)/4, $0x0000007f
DATA silubias<>+12(SB)/4, $0x0000007f
DATA silubias<>+16(SB)/4, $0x0000007f
DATA silubias<>+20(SB)/4, $0x0000007f
DATA silubias<>+24(SB)/4, $0x0000007f
DATA silubias<>+28(SB)/4, $0x0000007f
GLOBL silubias<>(SB), RODATA|NOPTR, $32

// SIGMOID: Y6 = 1/(1 + e^−Y0), eight lanes; uses Y1–Y5 and Y13 = 0.
// e^t as in Expf (kernel.go): t = −Y0 clamped to [−87, 88] (Y1),
// k = round(t·log2e) (Y2), r = t − k·ln2 with ln2 in two parts (Y1), e^r =
// p(r)·r² + r + 1 with Cephes' polynomial (Y4), times 2^k built in the
// exponent bits (Y5). Rounding k to nearest (Expf rounds half up) keeps
// |r| ≤ ln2/2 either way.
#define SIGMOID \
	VSUBPS       Y0, Y13, Y1; \
	VMAXPS       silulo<>(SB), Y1, Y1; \
	VMINPS       siluhi<>(SB), Y1, Y1; \
	VMULPS       silulog2e<>(SB), Y1, Y2; \
	VROUNDPS     $0, Y2, Y2; \
	VFNMADD231PS siluln2hi<>(SB), Y2, Y1; \
	VFMADD231PS  siluln2lo<>(SB), Y2, Y1; \
	VMULPS       Y1, Y1, Y3; \
	VMOVUPS      silup0<>(SB), Y4; \
	VFMADD213PS  silup1<>(SB), Y1, Y4; \
	VFMADD213PS  silup2<>(SB), Y1, Y4; \
	VFMADD213PS  silup3<>(SB), Y1, Y4; \
	VFMADD213PS  silup4<>(SB), Y1, Y4; \
	VFMADD213PS  silup5<>(SB), Y1, Y4; \
	VFMADD213PS  Y1, Y3, Y4; \
	VADDPS       siluone<>(SB), Y4, Y4; \
	VCVTPS2DQ    Y2, Y5; \
	VPADDD       silubias<>(SB), Y5, Y5; \
	VPSLLD       $23, Y5, Y5; \
	VMULPS       Y5, Y4, Y4; \
	VADDPS       siluone<>(SB), Y4, Y4; \
	VMOVUPS      siluone<>(SB), Y6; \
	VDIVPS       Y4, Y6, Y6

// func scaleShiftSiLUAVX2(x, y, sig *float32, n int, scale, shift float32)
//
// For the first n&^7 elements: a = x·scale + shift, sig = 1/(1+e^−a)
// (stored unless sig is nil), y = a·sig.
TEXT ·scaleShiftSiLUAVX2(SB), NOSPLIT, $0-40
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         sig+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS scale+32(FP), Y14
	VBROADCASTSS shift+36(FP), Y15
	VXORPS       Y13, Y13, Y13
	SHRQ         $3, CX
	JZ           done

loop:
	VMOVUPS      (SI), Y0
	VMULPS       Y14, Y0, Y0
	VADDPS       Y15, Y0, Y0             // Y0 = a = x·scale + shift (unfused, as the scalar loop)
	SIGMOID
	VMULPS       Y6, Y0, Y7              // Y7 = a·sig
	VMOVUPS      Y7, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DI
	TESTQ        DX, DX                  // sig == nil: not kept
	JZ           next
	VMOVUPS      Y6, (DX)
	ADDQ         $32, DX

next:
	DECQ         CX
	JNZ          loop

done:
	VZEROUPPER
	RET

// func siluBackwardAVX2(x, dy, da *float32, n int, scale, shift, rr, mr float32, sums *[8]float64)
//
// For the first n&^7 elements: a = x·scale + shift, sig as above,
// da = dy·sig·(1 + a·(1−sig)), x̂ = x·rr − mr; sums[0:4] += da and
// sums[4:8] += da·x̂ lane-wise in float64.
TEXT ·siluBackwardAVX2(SB), NOSPLIT, $0-56
	MOVQ         x+0(FP), SI
	MOVQ         dy+8(FP), BX
	MOVQ         da+16(FP), DI
	MOVQ         n+24(FP), CX
	MOVQ         sums+48(FP), R8
	VBROADCASTSS scale+32(FP), Y14
	VBROADCASTSS shift+36(FP), Y15
	VXORPS       Y13, Y13, Y13
	VMOVUPD      (R8), Y11
	VMOVUPD      32(R8), Y12
	SHRQ         $3, CX
	JZ           bdone

bloop:
	VMOVUPS      (SI), Y7
	VMULPS       Y14, Y7, Y0
	VADDPS       Y15, Y0, Y0             // Y0 = a
	SIGMOID                              // Y6 = sig
	VMOVUPS      siluone<>(SB), Y8
	VSUBPS       Y6, Y8, Y8              // 1 − sig
	VMULPS       Y0, Y8, Y8              // a·(1 − sig)
	VADDPS       siluone<>(SB), Y8, Y8   // 1 + a·(1 − sig)
	VMULPS       (BX), Y6, Y6            // dy·sig
	VMULPS       Y8, Y6, Y6              // Y6 = da
	VMOVUPS      Y6, (DI)
	VBROADCASTSS rr+40(FP), Y2
	VBROADCASTSS mr+44(FP), Y3
	VMULPS       Y2, Y7, Y7
	VSUBPS       Y3, Y7, Y7              // x̂ = x·rr − mr
	VMULPS       Y6, Y7, Y7              // da·x̂
	VCVTPS2PD    X6, Y9
	VEXTRACTF128 $1, Y6, X10
	VCVTPS2PD    X10, Y10
	VADDPD       Y9, Y11, Y11
	VADDPD       Y10, Y11, Y11
	VCVTPS2PD    X7, Y9
	VEXTRACTF128 $1, Y7, X10
	VCVTPS2PD    X10, Y10
	VADDPD       Y9, Y12, Y12
	VADDPD       Y10, Y12, Y12
	ADDQ         $32, SI
	ADDQ         $32, BX
	ADDQ         $32, DI
	DECQ         CX
	JNZ          bloop

bdone:
	VMOVUPD      Y11, (R8)
	VMOVUPD      Y12, 32(R8)
	VZEROUPPER
	RET

// func affineAVX2(dx, x *float32, n int, v, u, w float32)
//
// For the first n&^7 elements: dx = dx·v + x·u + w (unfused, as the scalar
// loop).
TEXT ·affineAVX2(SB), NOSPLIT, $0-36
	MOVQ         dx+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS v+24(FP), Y13
	VBROADCASTSS u+28(FP), Y14
	VBROADCASTSS w+32(FP), Y15
	SHRQ         $3, CX
	JZ           adone

aloop:
	VMULPS       (DI), Y13, Y0
	VMULPS       (SI), Y14, Y1
	VADDPS       Y1, Y0, Y0
	VADDPS       Y15, Y0, Y0
	VMOVUPS      Y0, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DI
	DECQ         CX
	JNZ          aloop

adone:
	VZEROUPPER
	RET

// func addToAVX2(dst, src *float32, n int)
//
// For the first n&^7 elements: dst += src.
TEXT ·addToAVX2(SB), NOSPLIT, $0-24
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    n+16(FP), CX
	SHRQ    $3, CX
	JZ      tdone

tloop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     tloop

tdone:
	VZEROUPPER
	RET

// func fillAVX2(dst *float32, n int, v float32)
//
// For the first n&^7 elements: dst = v.
TEXT ·fillAVX2(SB), NOSPLIT, $0-20
	MOVQ         dst+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS v+16(FP), Y0
	SHRQ         $3, CX
	JZ           fdone

floop:
	VMOVUPS      Y0, (DI)
	ADDQ         $32, DI
	DECQ         CX
	JNZ          floop

fdone:
	VZEROUPPER
	RET

// func scaleShiftAVX2(x, y *float32, n int, scale, shift float32)
//
// For the first n&^7 elements: y = x·scale + shift.
TEXT ·scaleShiftAVX2(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y14
	VBROADCASTSS shift+28(FP), Y15
	SHRQ         $3, CX
	JZ           ssdone

ssloop:
	VMOVUPS     (SI), Y0
	VFMADD213PS Y15, Y14, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         ssloop

ssdone:
	VZEROUPPER
	RET

// SIGMOID512: SIGMOID on sixteen lanes: Z6 = 1/(1 + e^−Z0); uses Z1–Z5 and
// Z13 = 0, the same operations in the same order (the constants broadcast
// from their first lane).
#define SIGMOID512 \
	VSUBPS            Z0, Z13, Z1; \
	VMAXPS.BCST       silulo<>(SB), Z1, Z1; \
	VMINPS.BCST       siluhi<>(SB), Z1, Z1; \
	VMULPS.BCST       silulog2e<>(SB), Z1, Z2; \
	VRNDSCALEPS       $0, Z2, Z2; \
	VFNMADD231PS.BCST siluln2hi<>(SB), Z2, Z1; \
	VFMADD231PS.BCST  siluln2lo<>(SB), Z2, Z1; \
	VMULPS            Z1, Z1, Z3; \
	VBROADCASTSS      silup0<>(SB), Z4; \
	VFMADD213PS.BCST  silup1<>(SB), Z1, Z4; \
	VFMADD213PS.BCST  silup2<>(SB), Z1, Z4; \
	VFMADD213PS.BCST  silup3<>(SB), Z1, Z4; \
	VFMADD213PS.BCST  silup4<>(SB), Z1, Z4; \
	VFMADD213PS.BCST  silup5<>(SB), Z1, Z4; \
	VFMADD213PS       Z1, Z3, Z4; \
	VADDPS.BCST       siluone<>(SB), Z4, Z4; \
	VCVTPS2DQ         Z2, Z5; \
	VPADDD.BCST       silubias<>(SB), Z5, Z5; \
	VPSLLD            $23, Z5, Z5; \
	VMULPS            Z5, Z4, Z4; \
	VADDPS.BCST       siluone<>(SB), Z4, Z4; \
	VBROADCASTSS      siluone<>(SB), Z6; \
	VDIVPS            Z4, Z6, Z6

// func scaleShiftSiLU512(x, y, sig *float32, n int, scale, shift float32)
//
// scaleShiftSiLUAVX2 on sixteen lanes, for the first n&^15 elements.
TEXT ·scaleShiftSiLU512(SB), NOSPLIT, $0-40
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         sig+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS scale+32(FP), Z14
	VBROADCASTSS shift+36(FP), Z15
	VPXORD       Z13, Z13, Z13
	SHRQ         $4, CX
	JZ           zdone

zloop:
	VMOVUPS      (SI), Z0
	VMULPS       Z14, Z0, Z0
	VADDPS       Z15, Z0, Z0 // Z0 = a = x·scale + shift (unfused, as the scalar loop)
	SIGMOID512
	VMULPS       Z6, Z0, Z7  // Z7 = a·sig
	VMOVUPS      Z7, (DI)
	ADDQ         $64, SI
	ADDQ         $64, DI
	TESTQ        DX, DX      // sig == nil: not kept
	JZ           znext
	VMOVUPS      Z6, (DX)
	ADDQ         $64, DX

znext:
	DECQ         CX
	JNZ          zloop

zdone:
	VZEROUPPER
	RET

// func sumSqAVX2(x *float32, n int, sums *[8]float64)
//
// For the first n&^7 elements: Σx in four float64 lanes into sums[0:4] and
// Σx² into sums[4:8].
TEXT ·sumSqAVX2(SB), NOSPLIT, $0-24
	MOVQ        x+0(FP), SI
	MOVQ        n+8(FP), CX
	MOVQ        sums+16(FP), DI
	VXORPD      Y0, Y0, Y0
	VXORPD      Y1, Y1, Y1
	VXORPD      Y2, Y2, Y2
	VXORPD      Y3, Y3, Y3
	SHRQ        $3, CX
	JZ          sqdone

sqloop:
	VCVTPS2PD   (SI), Y4
	VCVTPS2PD   16(SI), Y5
	VADDPD      Y4, Y0, Y0
	VADDPD      Y5, Y1, Y1
	VFMADD231PD Y4, Y4, Y2
	VFMADD231PD Y5, Y5, Y3
	ADDQ        $32, SI
	DECQ        CX
	JNZ         sqloop

sqdone:
	VADDPD      Y1, Y0, Y0
	VADDPD      Y3, Y2, Y2
	VMOVUPD     Y0, (DI)
	VMOVUPD     Y2, 32(DI)
	VZEROUPPER
	RET
