from .blazepose import BlazePoseGHUM, SigmoidConv2d

__all__ = ['BlazePoseGHUM', 'SigmoidConv2d']
